"""Pose skeleton drawing: the runtime hook's (docker/comfyui/steadydancer_runtime/pose_drawing.py)
against WanAnimatePreprocess's own, on random poses: every image must be identical, then the time per
frame of each. CPU only; needs the pinned pack's source, OpenCV and NumPy.

  python bench/pose/drawing.py --pack /path/to/ComfyUI/custom_nodes/ComfyUI-WanAnimatePreprocess \\
      [--frames 81] [--width 480 --height 832] [--out bench/results/pose-drawing.json]
"""

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load(name, path):
    """A module from its file, without its package's __init__ (the hook's needs a running ComfyUI)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def random_pose(rng):
    """A dwpose dict as the pack's aaposemeta_to_dwpose builds it, with the odd values it meets: joints
    missing (-1), zero and negative scores, points near the border and off the frame."""
    candidate = rng.uniform(-0.05, 1.05, size=(18, 2))
    score = rng.uniform(-0.2, 1.2, size=18)  # heatmap peaks can pass 1
    score[rng.random(18) < 0.1] = 0
    subset = np.arange(18, dtype=float)
    subset[score <= 0] = -1
    return {
        "bodies": {"candidate": candidate, "subset": subset[None], "score": score[None]},
        "hands": rng.uniform(-0.05, 1.05, size=(2, 21, 2)),
        "hands_score": rng.uniform(0, 1.2, size=(2, 21)),
        "faces": rng.uniform(0, 1, size=(1, 68, 2)),
        "faces_score": rng.uniform(0, 1.2, size=(1, 68)),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pack", required=True)
    parser.add_argument("--frames", type=int, default=81)
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--height", type=int, default=832)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out")
    a = parser.parse_args()
    pack = load("pack_onetoall_utils", os.path.join(a.pack, "onetoall", "utils.py"))
    draw_pose = load("hook_pose_drawing", os.path.join(ROOT, "docker/comfyui/steadydancer_runtime/pose_drawing.py")).draw_pose
    rng = np.random.default_rng(a.seed)
    poses = [random_pose(rng) for _ in range(a.frames)]
    options = [dict(), dict(without_face=True), dict(head_strength="weak", face_change=True), dict(head_strength="none")]
    mismatches = 0
    for i, pose in enumerate(poses):
        for opt in options:
            theirs = pack.draw_pose_aligned(pose, a.height, a.width, **opt)
            ours = draw_pose(pose, a.height, a.width, **opt)
            if theirs.shape != ours.shape or not np.array_equal(theirs, ours):
                mismatches += 1
                print(f"frame {i} {opt}: differs", file=sys.stderr)
    timings = {}
    for name, fn in (("pack", pack.draw_pose_aligned), ("ours", draw_pose)):
        per_frame = []
        for pose in poses:
            t = time.perf_counter()
            fn(pose, a.height, a.width)
            per_frame.append((time.perf_counter() - t) * 1000)
        timings[name] = {"median_ms": round(statistics.median(per_frame), 2), "total_s": round(sum(per_frame) / 1000, 3)}
    result = {
        "frames": a.frames, "width": a.width, "height": a.height, "option_sets": len(options),
        "identical": mismatches == 0, "mismatches": mismatches, "timings": timings,
        "speedup": round(timings["pack"]["total_s"] / timings["ours"]["total_s"], 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "python": platform.python_version(),
        "numpy": np.__version__, "opencv": __import__("cv2").__version__,
    }
    print(json.dumps(result))
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    return 0 if mismatches == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
