"""Per-node and per-step timings written as JSON lines, for the GPU benchmark.

ComfyUI sends execution events only to the websocket client that queued the prompt, so a benchmark
watching from outside cannot see them; this records them inside ComfyUI instead. Each line is one of
  {"ev": "prompt_start", "prompt_id", "t"}
  {"ev": "node", "prompt_id", "node", "class", "t0", "t1", "cached", "peak_bytes"}
  {"ev": "progress", "node", "value", "total", "t"}
  {"ev": "prompt_end", "prompt_id", "t", "peak_bytes"}
with t in seconds (time.time()), peak_bytes PyTorch's peak allocation since the prompt started and, at
prompt_end, peak_reserved_bytes the allocator's peak reservation (what a per-process memory cap limits).
The wrapper resets PyTorch's peak statistics itself (VAE, sampler), so every reset first folds the peak
so far into ours: the figures are the whole prompt's.
"""

import json
import threading
import time

_lock = threading.Lock()


def install(path):
    import execution
    import comfy.utils
    import torch

    cuda = torch.cuda.is_available()

    def write(record):
        with _lock, open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    # Peaks seen before the wrapper's own reset_peak_memory_stats calls, since the prompt started.
    folded = {"allocated": 0, "reserved": 0}
    original_reset = torch.cuda.reset_peak_memory_stats

    def folding_reset(device=None):
        folded["allocated"] = max(folded["allocated"], torch.cuda.max_memory_allocated(device))
        folded["reserved"] = max(folded["reserved"], torch.cuda.max_memory_reserved(device))
        original_reset(device)

    if cuda:
        torch.cuda.reset_peak_memory_stats = folding_reset

    def peak():
        return max(folded["allocated"], int(torch.cuda.max_memory_allocated())) if cuda else None

    def peak_reserved():
        return max(folded["reserved"], int(torch.cuda.max_memory_reserved())) if cuda else None

    original_execute = execution.execute

    async def timed_execute(server, dynprompt, caches, current_item, *args, **kwargs):
        node = dynprompt.get_node(current_item)
        cached = caches.outputs.get(current_item) is not None
        t0 = time.time()
        result = await original_execute(server, dynprompt, caches, current_item, *args, **kwargs)
        if cuda:
            torch.cuda.synchronize()
        write({"ev": "node", "prompt_id": args[2] if len(args) > 2 else None, "node": current_item,
               "class": node.get("class_type"), "t0": t0, "t1": time.time(), "cached": cached,
               "peak_bytes": peak()})
        return result

    execution.execute = timed_execute

    original_run = execution.PromptExecutor.execute_async

    async def timed_run(self, prompt, prompt_id, *args, **kwargs):
        if cuda:
            original_reset()
            folded.update(allocated=0, reserved=0)
        write({"ev": "prompt_start", "prompt_id": prompt_id, "t": time.time()})
        try:
            return await original_run(self, prompt, prompt_id, *args, **kwargs)
        finally:
            write({"ev": "prompt_end", "prompt_id": prompt_id, "t": time.time(), "peak_bytes": peak(),
                   "peak_reserved_bytes": peak_reserved()})

    execution.PromptExecutor.execute_async = timed_run

    original_update = comfy.utils.ProgressBar.update_absolute

    def timed_update(self, value, total=None, preview=None):
        original_update(self, value, total, preview)
        write({"ev": "progress", "node": self.node_id, "value": self.current, "total": self.total, "t": time.time()})

    comfy.utils.ProgressBar.update_absolute = timed_update
