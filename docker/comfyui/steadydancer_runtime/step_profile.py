"""Opt-in PyTorch profile of one transformer forward pass, for the GPU benchmark.

STEADYDANCER_PROFILE_FILE=<path> profiles the wrapper's WanModel.forward call number
STEADYDANCER_PROFILE_STEP (default 2, past the first step's set-up) of prompt number
STEADYDANCER_PROFILE_PROMPT (default 2, the first warm job), both counted from 1, and writes <path>
(the operators' table, by GPU time) and <path>.trace.json.gz (a Chrome trace: kernel by kernel, with
the gaps between them). Profiling slows the CPU side of that one call; the other calls are untouched.
"""

import gzip
import logging
import os
import shutil
import sys
import time

log = logging.getLogger("steadydancer_runtime")


def _wan_model_class():
    for name, module in list(sys.modules.items()):
        if name.endswith("wanvideo.modules.model") and hasattr(module, "WanModel"):
            return module.WanModel
    raise RuntimeError("the wrapper's wanvideo.modules.model is not loaded")


def install():
    import torch
    from torch.profiler import ProfilerActivity, profile

    import execution

    path = os.environ["STEADYDANCER_PROFILE_FILE"]
    target_prompt = int(os.environ.get("STEADYDANCER_PROFILE_PROMPT", "2"))
    target_call = int(os.environ.get("STEADYDANCER_PROFILE_STEP", "2"))
    model = _wan_model_class()
    original_forward = model.forward
    # Installed when the first prompt's first node runs (__init__.py): that prompt has already started.
    count = {"prompt": 1, "call": 0}

    original_run = execution.PromptExecutor.execute_async

    async def counted_run(self, *args, **kwargs):
        count["prompt"] += 1
        count["call"] = 0
        return await original_run(self, *args, **kwargs)

    execution.PromptExecutor.execute_async = counted_run
    cuda = torch.cuda.is_available()
    activities = [ProfilerActivity.CPU, ProfilerActivity.CUDA] if cuda else [ProfilerActivity.CPU]

    def synchronize():
        if cuda:
            torch.cuda.synchronize()

    def forward(self, *args, **kwargs):
        count["call"] += 1
        if (count["prompt"], count["call"]) != (target_prompt, target_call):
            return original_forward(self, *args, **kwargs)
        synchronize()
        t0 = time.perf_counter()
        with profile(activities=activities) as prof:
            result = original_forward(self, *args, **kwargs)
            synchronize()
        wall = time.perf_counter() - t0
        try:
            # Sorted by GPU time ("device" since PyTorch 2.4), or by CPU time where there is no GPU.
            sort_key = "self_device_time_total" if cuda else "self_cpu_time_total"
            _write(prof, sort_key, path, wall, count["prompt"], count["call"])
        except Exception as exc:  # a failed report never fails the prompt
            log.warning("steadydancer_runtime: profile not written: %s", exc)
        return result

    model.forward = forward


def _write(prof, sort_key, path, wall, prompt, call):
    averages = prof.key_averages()
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"prompt {prompt}, WanModel.forward call {call}: {wall:.3f} s wall (profiled)\n\n")
        f.write(averages.table(sort_by=sort_key, row_limit=80, max_name_column_width=90))
    trace = path + ".trace.json"
    prof.export_chrome_trace(trace)
    with open(trace, "rb") as src, gzip.open(trace + ".gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.remove(trace)
