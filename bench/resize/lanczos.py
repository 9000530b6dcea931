"""ComfyUI's Lanczos resize (comfy.utils.lanczos, one frame after another) against the ComfyUI hook's
parallel one (docker/comfyui/steadydancer_runtime/lanczos.py) on 81 random frames at 480x832, as the
workflow's ImageResizeKJv2 nodes resize the pose video: seconds (best of --repeat) and bit equality.
Run with the Python of a ComfyUI checkout (torch, Pillow):

  python bench/resize/lanczos.py --comfy-dir C [--frames 81] [--repeat 3] [--out bench/results/lanczos.json]
"""

import argparse
import json
import os
import platform
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--comfy-dir", required=True)
    p.add_argument("--frames", type=int, default=81)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out")
    a = p.parse_args()
    sys.path[:0] = [a.comfy_dir, os.path.join(ROOT, "docker", "comfyui")]
    import PIL
    import torch
    import comfy.utils as cu
    from steadydancer_runtime import lanczos as hook

    x = torch.rand(a.frames, 3, 832, 480, generator=torch.Generator().manual_seed(0))
    parallel = hook.parallel(cu.lanczos)
    comfy_s, reference = best(lambda: cu.lanczos(x, 480, 832), a.repeat)
    hook_s, ours = best(lambda: parallel(x, 480, 832), a.repeat)
    result = {
        "frames": a.frames, "width": 480, "height": 832,
        "comfy_s": round(comfy_s, 3), "parallel_s": round(hook_s, 3), "threads": hook.WORKERS,
        "identical": bool(torch.equal(reference, ours)),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "python": platform.python_version(),
        "torch": torch.__version__, "pillow": PIL.__version__,
    }
    print(json.dumps(result))
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    return 0 if result["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
