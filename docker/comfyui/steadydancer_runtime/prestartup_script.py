"""steadydancer-worker's ComfyUI start-up hook (runs before any node pack is imported).

* Attention: on Hopper and newer, PyTorch's SDPA is fastest through cuDNN (38 ms against 61 ms for
  the flash backend at the 14B model's shape on an H200). Some PyTorch releases rank flash first; this
  puts cuDNN first, keeping the others as fallbacks, so the wrapper's `sdpa` mode gets it. Exact.
* STEADYDANCER_GPU_MEMORY_GB caps this process's share of the card, to measure or rehearse a smaller
  card on a big one (the worker passes it through; unset in production).
"""

import logging
import os

log = logging.getLogger("steadydancer_runtime")


def _prefer_cudnn_sdpa(torch):
    major, _ = torch.cuda.get_device_capability(0)
    if major < 9:
        return "unchanged (compute capability < 9.0)"
    from torch.nn.attention import SDPBackend, sdpa_kernel

    order = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
    try:
        ctx = sdpa_kernel(order, set_priority=True)
    except TypeError:  # PyTorch without set_priority: leave its default order
        return "unchanged (this PyTorch cannot reorder SDPA backends)"
    # The priority is process-global state that the context manager sets on entry; it is entered once
    # and never left, so every later SDPA call (ComfyUI runs prompts in another thread) sees it.
    ctx.__enter__()
    globals()["_held_sdpa_priority"] = ctx
    return "cudnn first"


def _cap_memory(torch, gb):
    total = torch.cuda.get_device_properties(0).total_memory
    fraction = min(1.0, gb * 1024**3 / total)
    torch.cuda.set_per_process_memory_fraction(fraction, 0)
    return f"{gb:g} GiB of {total / 1024**3:.0f} GiB ({fraction:.3f})"


def _setup():
    try:
        import torch
    except Exception:
        return
    if not torch.cuda.is_available():
        return
    try:
        log.info("steadydancer_runtime: SDPA backend order %s", _prefer_cudnn_sdpa(torch))
    except Exception as exc:  # never block ComfyUI's start over a speed preference
        log.warning("steadydancer_runtime: could not set SDPA priority: %s", exc)
    cap = os.environ.get("STEADYDANCER_GPU_MEMORY_GB")
    if cap:
        log.info("steadydancer_runtime: GPU memory capped at %s", _cap_memory(torch, float(cap)))


_setup()
