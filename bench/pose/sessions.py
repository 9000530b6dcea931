"""What the pose node pays per job for re-creating its ONNX Runtime sessions (the pack's reinit()/cleanup()
around every run), which the ComfyUI hook's pose_sessions.py avoids on cards that keep the model resident.
Times InferenceSession creation for the detector and ViTPose-H, a few times each (the first from a cold
page cache where the files were just written), on the CPU provider, or another with --provider.

  python bench/gpu/make_weights.py --comfy-dir C --root M --only yolov10m,vitpose-h-model,vitpose-h-data --pose-size real
  python bench/pose/sessions.py --models M [--provider CUDAExecutionProvider] [--repeat 3] [--out bench/results/pose-sessions.json]
"""

import argparse
import json
import os
import platform
import statistics
import time

MODELS = {"detector (yolov10m)": "yolov10m.onnx", "keypoints (ViTPose-H)": "vitpose_h_wholebody_model.onnx"}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--models", required=True, help="the model root make_weights.py wrote (holds detection/onnx/)")
    p.add_argument("--provider", default="CPUExecutionProvider")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out")
    a = p.parse_args()
    import onnxruntime

    runs = {}
    for label, name in MODELS.items():
        path = os.path.join(a.models, "detection", "onnx", name)
        seconds = []
        for _ in range(a.repeat):
            started = time.perf_counter()
            session = onnxruntime.InferenceSession(path, providers=[a.provider])
            seconds.append(round(time.perf_counter() - started, 3))
            del session
        data = path.replace("_model.onnx", "_data.bin")
        size = os.path.getsize(path) + (os.path.getsize(data) if data != path and os.path.exists(data) else 0)
        runs[label] = {"file": name, "bytes": size, "create_s": seconds, "median_s": statistics.median(seconds)}
        print(f"{label}: {size / 2**20:,.0f} MiB, session created in {seconds} s")
    per_job = round(sum(r["median_s"] for r in runs.values()), 3)
    print(f"re-created per job: {per_job} s (median of each)")
    result = {
        "provider": a.provider,
        "sessions": runs,
        "per_job_s": per_job,
        "onnxruntime": onnxruntime.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "python": platform.python_version(),
        "models": "make_weights.py --pose-size real stand-ins (yolov10m and ViTPose-H sizes and layer counts)",
    }
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
