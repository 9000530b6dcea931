"""Keeps WanAnimatePreprocess's ONNX sessions (person detector, ViTPose-H) between prompts on cards that
keep the diffusion model resident.

The pose node re-creates both ONNX Runtime sessions at the start of every run (`reinit()`) and deletes
them at the end (`cleanup()`), so that their GPU memory (ViTPose-H alone is 2.5 GB of weights) goes back to
the diffusion model on small cards. Each re-creation reads and optimises the graph and loads its weights
again (with the CUDA provider also uploads them and searches cuDNN's convolution algorithms on the first
run): a cost every job pays for memory a big card does not need back. There `cleanup()` keeps the session,
and `reinit()`, which only creates a missing one, finds it: one creation per process. Same model, same
provider, same inputs, so the same keypoints.

STEADYDANCER_POSE_SESSIONS: `keep`, `per-job` (the pack's behaviour) or `auto` (default): per job where the
worker offloads the model (VRAM_MODE low or minimal, or `auto` on a card under KEEP_MIN_GIB, the process cap
STEADYDANCER_GPU_MEMORY_GB counting as the card), kept otherwise.
"""

import importlib
import logging
import os
import sys

log = logging.getLogger("steadydancer_runtime")

PACK_PACKAGE_SUFFIX = "ComfyUI-WanAnimatePreprocess"
SESSIONS_MODULE = ".models.onnx_models"
# The smallest card on which the worker keeps a model resident (GGUF 39-41 GiB, fp8 44: src/gpu/memory-plan.ts).
KEEP_MIN_GIB = 39


def _card_gib():
    cap = os.environ.get("STEADYDANCER_GPU_MEMORY_GB", "").strip()
    if cap:
        return float(cap)
    import torch

    if not torch.cuda.is_available():
        return 0.0
    return torch.cuda.get_device_properties(0).total_memory / 1024**3


def keep_decision():
    """(keep, why) from STEADYDANCER_POSE_SESSIONS, the worker's VRAM_MODE and the card's memory."""
    mode = os.environ.get("STEADYDANCER_POSE_SESSIONS", "auto").strip().lower()
    if mode in ("keep", "per-job"):
        return mode == "keep", f"STEADYDANCER_POSE_SESSIONS={mode}"
    vram = os.environ.get("VRAM_MODE", "auto").strip().lower()
    if vram in ("low", "minimal"):
        return False, f"VRAM_MODE={vram}"
    if vram == "high":
        return True, "VRAM_MODE=high"
    gib = _card_gib()
    return gib >= KEEP_MIN_GIB, f"{gib:.1f} GiB GPU, kept from {KEEP_MIN_GIB} GiB"


def _keep(self):
    """cleanup() that keeps the session for the next run (reinit() then finds it)."""


_keep.steadydancer_keep = True


def install():
    """Patches the pack's SimpleOnnxInference.cleanup where sessions are kept. False while no pose pack is loaded."""
    packs = [name for name in list(sys.modules) if name.endswith(PACK_PACKAGE_SUFFIX)]
    if not packs:
        return False
    keep, why = keep_decision()
    if not keep:
        log.info("steadydancer_runtime: pose ONNX sessions re-created for every prompt (%s)", why)
        return True
    for pack in packs:
        sessions = importlib.import_module(pack + SESSIONS_MODULE).SimpleOnnxInference
        if not getattr(sessions.cleanup, "steadydancer_keep", False):
            sessions.cleanup = _keep
            log.info("steadydancer_runtime: pose ONNX sessions kept between prompts in %s (%s)", pack.rsplit("/", 1)[-1], why)
    return True
