#!/usr/bin/env python3
"""Start-up self-check of the attention kernels on the real GPU.

The worker runs this once at start, beside ComfyUI's boot, and prints one JSON line. It answers two
questions the workflow depends on:

* Does each attention backend the templates may use compute attention? A SageAttention build can
  import, run and return a tensor of the right shape that is uninitialised memory (the 2.2 release tag on
  Hopper bound its sm90 op to the fake implementation). So every candidate is compared with an fp32
  reference on random input; the worker only uses a mode whose output agrees.
* What card is this? Its total memory decides how the model fits (resident, offloaded, block swap, VAE
  tiling). With STEADYDANCER_GPU_MEMORY_GB set (the process cap the worker's ComfyUI hook applies, to
  rehearse a smaller card on a big one) the report also carries memory_cap_bytes, which the worker
  then plans for.

Usage: attention_check.py [--modes sageattn,sdpa] [--bench] [--seq N]
Exit code 0 with the JSON on stdout whenever the check itself ran (a failing mode is data, not an
error); 2 when there is no usable CUDA device.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time


def _agreement(out, ref):
    """Cosine similarity and relative L2 error of out against ref (both compared in fp32)."""
    o = out.float().flatten()
    r = ref.float().flatten()
    if not bool(o.isfinite().all()):
        return {"cosine": None, "rel_l2": None, "finite": False}
    cos = float((o @ r) / (o.norm() * r.norm()).clamp_min(1e-30))
    rel = float((o - r).norm() / r.norm().clamp_min(1e-30))
    return {"cosine": round(cos, 6), "rel_l2": round(rel, 6), "finite": True}


# Thresholds: SageAttention 2 (int8 QK, fp8 PV) measured rel_l2 ~0.04 at the model's shapes; exact
# backends ~3e-3. Garbage (uninitialised memory, a wrong layout) gives cosine near 0.
MIN_COSINE = 0.99
MAX_REL_L2 = 0.10


def _candidates(torch, modes):
    """name -> fn(q, k, v) over NHD tensors [B, L, H, D], as the wrapper calls each mode."""
    import torch.nn.functional as F

    def sdpa(q, k, v):
        return F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)).transpose(1, 2)

    def sdpa_backend(backend):
        from torch.nn.attention import sdpa_kernel

        def run(q, k, v):
            with sdpa_kernel([backend]):
                return sdpa(q, k, v)

        return run

    out = {}
    errors = {}
    for mode in modes:
        if mode == "sdpa":
            out[mode] = sdpa
        elif mode.startswith("sdpa_"):
            from torch.nn.attention import SDPBackend

            name = {"sdpa_cudnn": "CUDNN_ATTENTION", "sdpa_flash": "FLASH_ATTENTION",
                    "sdpa_efficient": "EFFICIENT_ATTENTION"}.get(mode)
            if name is None or not hasattr(SDPBackend, name):
                errors[mode] = f"unknown SDPA backend {mode}"
                continue
            out[mode] = sdpa_backend(getattr(SDPBackend, name))
        elif mode == "sageattn":
            try:
                from sageattention import sageattn
            except Exception as exc:  # not installed or its extension does not load on this GPU
                errors[mode] = f"import failed: {type(exc).__name__}: {exc}"
                continue
            out[mode] = lambda q, k, v: sageattn(q, k, v, tensor_layout="NHD")
        else:
            errors[mode] = "unknown mode"
    return out, errors


def _time_ms(torch, fn, *args, reps=10):
    for _ in range(2):
        fn(*args)
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn(*args)
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return round(times[len(times) // 2], 3)


def _memory_cap(total):
    """{"memory_cap_bytes": n} under STEADYDANCER_GPU_MEMORY_GB (GiB, as the ComfyUI hook reads it), else {}."""
    cap = os.environ.get("STEADYDANCER_GPU_MEMORY_GB", "").strip()
    if not cap:
        return {}
    return {"memory_cap_bytes": min(total, int(float(cap) * 1024**3))}


def run(modes, seq, heads, head_dim, bench):
    t0 = time.monotonic()
    import torch

    if not torch.cuda.is_available():
        print(json.dumps({"ok": False, "error": "no CUDA device visible to PyTorch"}))
        return 2
    dev = torch.device("cuda")
    props = torch.cuda.get_device_properties(dev)
    report = {
        "ok": True,
        "gpu": props.name,
        "capability": f"{props.major}.{props.minor}",
        "total_memory_bytes": int(props.total_memory),
        **_memory_cap(int(props.total_memory)),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "shape": [1, seq, heads, head_dim],
        "thresholds": {"min_cosine": MIN_COSINE, "max_rel_l2": MAX_REL_L2},
        "modes": {},
    }
    try:
        import importlib.metadata as md

        report["sageattention"] = md.version("sageattention")
    except Exception:
        report["sageattention"] = None

    gen = torch.Generator(device=dev).manual_seed(0)
    q, k, v = (torch.randn(1, seq, heads, head_dim, device=dev, dtype=torch.bfloat16, generator=gen) for _ in range(3))
    # fp32 reference on the same bf16 inputs (all heads at once: 8 x 2048^2 scores, ~134 MB at the defaults).
    qf, kf, vf = (t.float().transpose(1, 2) for t in (q, k, v))
    scores = torch.softmax((qf @ kf.transpose(-1, -2)) / math.sqrt(head_dim), dim=-1)
    ref = (scores @ vf).transpose(1, 2)
    del scores, qf, kf, vf

    fns, errors = _candidates(torch, modes)
    for mode, err in errors.items():
        report["modes"][mode] = {"ok": False, "error": err}
    for mode, fn in fns.items():
        entry = {}
        try:
            # Poison the allocator's free memory so a kernel that never writes its output cannot
            # pass by returning a previous run's result.
            torch.empty(q.numel() * 4, device=dev, dtype=torch.bfloat16).fill_(float("nan"))
            out = fn(q, k, v)
            torch.cuda.synchronize()
            entry.update(_agreement(out, ref))
            entry["ok"] = bool(entry["finite"] and entry["cosine"] >= MIN_COSINE and entry["rel_l2"] <= MAX_REL_L2)
        except Exception as exc:
            entry = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
        report["modes"][mode] = entry
    del ref

    if bench:
        # The model's own attention shape: Wan 2.1 14B at 81 frames 480x832 (32,760 tokens, 40 heads).
        shape = (1, 32760, 40, 128)
        bq, bk, bv = (torch.randn(*shape, device=dev, dtype=torch.bfloat16, generator=gen) for _ in range(3))
        report["bench_shape"] = list(shape)
        for mode, fn in fns.items():
            if report["modes"][mode].get("ok"):
                try:
                    report["modes"][mode]["bench_ms"] = _time_ms(torch, fn, bq, bk, bv)
                except Exception as exc:
                    report["modes"][mode]["bench_error"] = f"{type(exc).__name__}: {exc}"[:300]
        if "sdpa" in fns:
            report["sdpa_default_backend"] = _default_sdpa_backend(torch, bq, bk, bv)
    report["seconds"] = round(time.monotonic() - t0, 3)
    print(json.dumps(report))
    return 0


def _default_sdpa_backend(torch, q, k, v):
    """Which backend plain SDPA picks at these shapes (profiler kernel names)."""
    import torch.nn.functional as F
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        torch.cuda.synchronize()
    names = [e.key for e in prof.key_averages()]
    for key, label in (("cudnn", "cudnn"), ("flash", "flash"), ("fmha", "efficient"), ("mem_eff", "efficient")):
        if any(key in n.lower() for n in names):
            return label
    return ",".join(names[:5])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--modes", default="sageattn,sdpa", help="comma list: sageattn, sdpa, sdpa_cudnn, sdpa_flash, sdpa_efficient")
    p.add_argument("--seq", type=int, default=2048)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--head-dim", type=int, default=128)
    p.add_argument("--bench", action="store_true", help="also time each passing mode at the 14B model's shape")
    a = p.parse_args(argv)
    try:
        return run([m.strip() for m in a.modes.split(",") if m.strip()], a.seq, a.heads, a.head_dim, a.bench)
    except Exception as exc:  # the check itself broke: say so in the same one-line shape
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}))
        return 1


if __name__ == "__main__":
    sys.exit(main())
