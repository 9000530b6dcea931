"""The pose node as a job runs it: a real ComfyUI (CPU is enough) runs LoadImage -> RepeatImageBatch(N)
-> OnnxDetectionModelLoader -> PoseDetectionOneToAllAnimation -> SaveImage, once with the pack's own
skeleton drawing (STEADYDANCER_POSE_DRAWING=pack) and once with the worker's hook, and compares the
node's time (the hook's timing file) and the saved frames (bytes). Pose models: make_weights.py's
stand-ins (their inference is not the real models' cost; the drawing is the same at any model size).

  python bench/gpu/make_weights.py --comfy-dir C --root M --only yolov10m,vitpose-h-model,vitpose-h-data --pose-size tiny
  python bench/pose/node.py --comfy-dir C --models M [--python P] [--frames 81] [--out bench/results/pose-node.json]
"""

import argparse
import hashlib
import json
import os
import platform
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def write_png(path, width, height):
    """A mid-grey RGB PNG (the reference image; the stand-in detector's answer does not depend on it)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\x80" * (3 * width) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def prompt(frames):
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": "pose-bench-ref.png"}},
        "2": {"class_type": "RepeatImageBatch", "inputs": {"image": ["1", 0], "amount": frames}},
        "3": {"class_type": "OnnxDetectionModelLoader", "inputs": {"vitpose_model": "onnx/vitpose_h_wholebody_model.onnx",
                                                                     "yolo_model": "onnx/yolov10m.onnx", "onnx_device": "CPUExecutionProvider"}},
        "4": {"class_type": "PoseDetectionOneToAllAnimation", "inputs": {"model": ["3", 0], "images": ["2", 0], "width": 480, "height": 832,
                                                                           "align_to": "ref", "draw_face_points": "full", "draw_head": "full", "ref_image": ["1", 0]}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "pose-bench"}},
    }


def run_once(a, mode, work, port):
    timings = os.path.join(work, f"timings-{mode}.jsonl")
    output = os.path.join(work, f"output-{mode}")
    env = dict(os.environ, STEADYDANCER_POSE_DRAWING=mode, STEADYDANCER_TIMINGS_FILE=timings)
    cmd = [a.python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port), "--disable-api-nodes",
           "--extra-model-paths-config", os.path.join(work, "paths.yaml"), "--output-directory", output,
           "--front-end-root", work]  # no UI needed: an index.html stands in for the front-end package
    with open(os.path.join(work, f"comfyui-{mode}.log"), "w") as log:
        comfy = subprocess.Popen(cmd, cwd=a.comfy_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/system_stats", timeout=2)
                break
            except OSError:
                time.sleep(1)
        body = json.dumps({"prompt": prompt(a.frames)}).encode()
        urllib.request.urlopen(urllib.request.Request(base + "/prompt", body, {"content-type": "application/json"}), timeout=30)
        for _ in range(600):
            if os.path.exists(timings) and "prompt_end" in open(timings).read():
                break
            time.sleep(1)
    except OSError:
        sys.stderr.write(open(os.path.join(work, f"comfyui-{mode}.log")).read()[-3000:])
        raise
    finally:
        comfy.terminate()
        comfy.wait(timeout=30)
    nodes = [json.loads(line) for line in open(timings) if '"ev": "node"' in line]
    seconds = next(n["t1"] - n["t0"] for n in nodes if n["class"] == "PoseDetectionOneToAllAnimation")
    digest = hashlib.sha256()
    frames = sorted(f for f in os.listdir(output) if f.endswith(".png"))
    for f in frames:
        digest.update(open(os.path.join(output, f), "rb").read())
    hooked = "fast pose drawing matches" in open(os.path.join(work, f"comfyui-{mode}.log")).read()
    return {"node_s": round(seconds, 3), "frames": len(frames), "sha256": digest.hexdigest(), "hook_verified": hooked}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--comfy-dir", required=True, help="ComfyUI with ComfyUI-WanAnimatePreprocess in custom_nodes")
    parser.add_argument("--models", required=True, help="models root holding detection/onnx/")
    parser.add_argument("--python", default=sys.executable, help="the Python that runs that ComfyUI")
    parser.add_argument("--frames", type=int, default=81)
    parser.add_argument("--port", type=int, default=8199)
    parser.add_argument("--out")
    a = parser.parse_args()
    work = tempfile.mkdtemp(prefix="pose-node-")
    try:
        with open(os.path.join(work, "paths.yaml"), "w") as f:
            f.write(f"bench:\n  base_path: {a.models}\n  detection: detection\n  custom_nodes: {os.path.join(ROOT, 'docker/comfyui')}\n")
        with open(os.path.join(work, "index.html"), "w") as f:
            f.write("<html></html>")
        write_png(os.path.join(a.comfy_dir, "input", "pose-bench-ref.png"), 480, 832)
        runs = {mode: run_once(a, mode, work, a.port) for mode in ("pack", "fast")}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "frames": a.frames, "width": 480, "height": 832, "runs": runs,
        "identical_frames": runs["pack"]["sha256"] == runs["fast"]["sha256"] and runs["pack"]["frames"] == a.frames,
        "speedup": round(runs["pack"]["node_s"] / runs["fast"]["node_s"], 2),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "python": platform.python_version(),
    }
    print(json.dumps(result))
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    return 0 if result["identical_frames"] and runs["fast"]["hook_verified"] else 1


if __name__ == "__main__":
    sys.exit(main())
