"""ComfyUI's Lanczos resize (comfy.utils.lanczos), pixel for pixel, with the frames resized on a thread pool.

ComfyUI resizes with Lanczos through Pillow one frame after another: 8-bit conversion, Image.resize,
back to float. The workflow's two ImageResizeKJv2 nodes send every pose frame through it on one core,
0.4-0.75 s a node for 81 frames at 480x832 on the H200 machine. Each frame's steps are independent, and
Pillow's resize and NumPy's conversions release the GIL, so the same steps on a pool of threads give the
same pixels sooner (2.5 s -> 0.9 s on 2 cores here). The first call in a process is compared with
ComfyUI's own on its first frame; on any difference ComfyUI's function is put back and the difference
logged. STEADYDANCER_PARALLEL_RESIZE=off leaves ComfyUI's.
"""

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numpy as np
from PIL import Image

log = logging.getLogger("steadydancer_runtime")
WORKERS = max(1, min(16, os.cpu_count() or 1))


def resize_frame(hwc, width, height):
    """One frame as comfy.utils.lanczos treats it: float HWC in [0, 1] -> uint8 -> Pillow Lanczos -> float32."""
    image = Image.fromarray(np.clip(255.0 * hwc, 0, 255).astype(np.uint8))
    image = image.resize((width, height), resample=Image.Resampling.LANCZOS)
    return np.array(image).astype(np.float32) / 255.0


@cache
def _pool():
    return ThreadPoolExecutor(WORKERS, thread_name_prefix="steadydancer-lanczos")


def resize_frames(frames, width, height):
    """resize_frame for each frame, in order; on the pool when there is more than one."""
    if len(frames) < 2:
        return [resize_frame(f, width, height) for f in frames]
    return list(_pool().map(lambda f: resize_frame(f, width, height), frames))


def parallel(original):
    """comfy.utils.lanczos's replacement; `original` serves the first-call check and any fallback."""
    import torch

    state = {"checked": False, "use_original": False}

    def lanczos(samples, width, height):
        if state["use_original"]:
            return original(samples, width, height)
        frames = [image.movedim(0, -1).cpu().numpy() for image in samples]
        resized = [torch.from_numpy(f).movedim(-1, 0) for f in resize_frames(frames, width, height)]
        result = torch.stack(resized).to(samples.device, samples.dtype)
        if not state["checked"]:
            state["checked"] = True
            reference = original(samples[:1], width, height)
            if not torch.equal(reference, result[:1]):
                state["use_original"] = True
                log.error("steadydancer_runtime: parallel Lanczos resize differs from ComfyUI's; using ComfyUI's")
                return original(samples, width, height)
            log.info("steadydancer_runtime: parallel Lanczos resize matches ComfyUI's on the first frame")
        return result

    lanczos.steadydancer_parallel = True
    return lanczos


def install():
    """Replaces comfy.utils.lanczos (common_upscale looks it up at call time, so every caller gets it)."""
    import comfy.utils

    if not getattr(comfy.utils.lanczos, "steadydancer_parallel", False):
        comfy.utils.lanczos = parallel(comfy.utils.lanczos)
        log.info("steadydancer_runtime: parallel Lanczos resize installed (%d threads)", WORKERS)
    return True
