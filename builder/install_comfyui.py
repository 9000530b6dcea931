#!/usr/bin/env python3
"""Installs the Python side of the image from workflows/pins.json (the only place versions live).

Steps, each a sub-command the Dockerfile runs in its own layer:
  torch          PyTorch (exact pin) + matching torchvision/torchaudio from the pinned CUDA wheel
                 index; writes a pip constraints file so no later requirement can swap them.
  sageattention  builds the pinned SageAttention release from source into a wheel (needs nvcc and
                 TORCH_CUDA_ARCH_LIST: there is no GPU at build time), or fetches a given wheel and
                 checks its sha256.
  comfyui        clones ComfyUI and every custom node at its full pinned commit, installs their
                 requirements under the constraints, and the pinned onnxruntime-gpu.
  turbodiffusion optional (build arg): TurboDiffusion's kernels and its ComfyUI node at pinned commits.
  verify         imports torch / sageattention / onnxruntime and compares versions with the pins.
Any mismatch or placeholder pin stops the build with a message naming the pin at fault.
Standard library only.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

PLACEHOLDER = re.compile(r"^0{40}$")
FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
CONSTRAINTS = Path("/opt/constraints.txt")


class PinError(Exception):
    pass


def log(message: str) -> None:
    print(f"[install] {message}", flush=True)


def run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    log("$ " + " ".join(cmd))
    subprocess.run(cmd, cwd=cwd, env=env, check=True)


def load_pins(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def checked_commit(name: str, entry: dict) -> str:
    commit = str(entry.get("commit", "")).lower()
    if PLACEHOLDER.match(commit):
        raise PinError(f"pins.json: {name} still has the placeholder commit; put the validated full SHA there")
    if not FULL_SHA.match(commit):
        raise PinError(f"pins.json: {name}.commit must be a full 40-hex SHA, got {commit!r}")
    return commit


def pip(python: str, *args: str) -> None:
    run([python, "-m", "pip", "install", "--no-cache-dir", *args])


def clone_at(repo: str, commit: str, dest: Path) -> None:
    """Shallow fetch of exactly one commit (GitHub serves any reachable SHA), then proves HEAD."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    run(["git", "init", "--quiet"], cwd=dest)
    run(["git", "remote", "add", "origin", repo], cwd=dest)
    run(["git", "fetch", "--quiet", "--depth", "1", "origin", commit], cwd=dest)
    run(["git", "checkout", "--quiet", "FETCH_HEAD"], cwd=dest)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=dest, check=True, capture_output=True, text=True).stdout.strip()
    if head != commit:
        raise PinError(f"{repo}: checked out {head}, expected {commit}")


def validated_constraints(pins_path: Path) -> list[str]:
    """The validated environment's versions (workflows/python-constraints.txt beside pins.json)."""
    path = pins_path.parent / "python-constraints.txt"
    lines = [l.strip() for l in path.read_text(encoding="utf-8").splitlines()]
    return [l for l in lines if l and not l.startswith("#")]


def step_torch(pins: dict, python: str, pins_path: Path) -> None:
    py = pins["python"]
    # torchvision/torchaudio pin torch exactly in their metadata, so pip picks the builds that
    # match the pinned torch from the same index; they are then frozen into the constraints file.
    pip(python, "--index-url", py["torch_index"], f"torch=={py['torch']}", "torchvision", "torchaudio")
    frozen = subprocess.run([python, "-m", "pip", "freeze"], check=True, capture_output=True, text=True).stdout
    lines = [l for l in frozen.splitlines() if re.match(r"^(torch|torchvision|torchaudio)==", l)]
    lines.append(f"onnxruntime-gpu=={py['onnxruntime_gpu']}")
    lines += validated_constraints(pins_path)
    CONSTRAINTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
    log(f"constraints: {', '.join(lines)}")


def step_sageattention(pins: dict, python: str, wheel_dir: Path, wheel_url: str, wheel_sha256: str) -> None:
    version = pins["python"]["sageattention"]
    wheel_dir.mkdir(parents=True, exist_ok=True)
    if wheel_url:
        if not re.match(r"^[0-9a-f]{64}$", wheel_sha256.lower()):
            raise PinError("SAGEATTENTION_WHEEL_URL needs SAGEATTENTION_WHEEL_SHA256 (64 hex digits)")
        name = wheel_url.rsplit("/", 1)[-1].split("?")[0]
        if f"-{version}" not in name:
            raise PinError(f"wheel {name} is not sageattention {version} (pins.json python.sageattention)")
        target = wheel_dir / name
        with urllib.request.urlopen(wheel_url, timeout=300) as resp, target.open("wb") as out:
            shutil.copyfileobj(resp, out)
        actual = hashlib.sha256(target.read_bytes()).hexdigest()
        if actual != wheel_sha256.lower():
            raise PinError(f"wheel {name}: sha256 {actual} != SAGEATTENTION_WHEEL_SHA256")
        return
    src = Path("/tmp/sageattention-src")
    if src.exists():
        shutil.rmtree(src)
    run(["git", "clone", "--quiet", "--depth", "1", "--branch", f"v{version}",
         "https://github.com/thu-ml/SageAttention", str(src)])
    # --no-build-isolation: setup.py imports the torch installed above (CUDA extension build).
    run([python, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(wheel_dir), str(src)])
    built = list(wheel_dir.glob(f"sageattention-{version}-*.whl"))
    if len(built) != 1:
        raise PinError(f"expected one sageattention-{version} wheel in {wheel_dir}, found {[p.name for p in built]}")


def install_node_requirements(python: str, node_dir: Path) -> None:
    req = node_dir / "requirements.txt"
    if req.exists():
        pip(python, "-c", str(CONSTRAINTS), "-r", str(req))


def step_comfyui(pins: dict, python: str, comfy_dir: Path) -> None:
    comfy = pins["comfyui"]
    clone_at(comfy["repo"], checked_commit("comfyui", comfy), comfy_dir)
    pip(python, "-c", str(CONSTRAINTS), "-r", str(comfy_dir / "requirements.txt"))
    # ComfyUI imports requests without listing it (transformers 5 stopped pulling it in).
    pip(python, "-c", str(CONSTRAINTS), "requests")
    for node in pins["custom_nodes"]:
        node_dir = comfy_dir / "custom_nodes" / node["name"]
        clone_at(node["repo"], checked_commit(f"custom_nodes[{node['name']}]", node), node_dir)
        install_node_requirements(python, node_dir)
    # A CPU-only `onnxruntime` pulled by some requirement shadows the GPU build's providers.
    subprocess.run([python, "-m", "pip", "uninstall", "--yes", "onnxruntime"], check=False)
    pip(python, "-c", str(CONSTRAINTS), "--force-reinstall", "--no-deps",
        f"onnxruntime-gpu=={pins['python']['onnxruntime_gpu']}")


def step_turbodiffusion(pins: dict, python: str, comfy_dir: Path) -> None:
    optional = pins.get("optional", {})
    kernels = optional.get("turbodiffusion")
    node = optional.get("turbodiffusion_node")
    if not kernels or not node:
        raise PinError("TURBODIFFUSION=1 needs pins.json optional.turbodiffusion (kernels) and "
                       "optional.turbodiffusion_node (ComfyUI node: name, repo, commit)")
    src = Path("/opt/turbodiffusion")
    clone_at(kernels["repo"], checked_commit("optional.turbodiffusion", kernels), src)
    run([python, "-m", "pip", "install", "--no-cache-dir", "--no-build-isolation", "-c", str(CONSTRAINTS), str(src)])
    node_dir = comfy_dir / "custom_nodes" / node["name"]
    clone_at(node["repo"], checked_commit("optional.turbodiffusion_node", node), node_dir)
    install_node_requirements(python, node_dir)


VERIFY_CODE = """
import json, sys, importlib.metadata as md
import torch, onnxruntime
want = json.loads(sys.argv[1])
got = {
    "torch": torch.__version__.split("+")[0],
    "cuda": torch.version.cuda or "",
    "sageattention": md.version("sageattention"),
    "onnxruntime_gpu": md.version("onnxruntime-gpu"),
    "python": "%d.%d" % sys.version_info[:2],
}
bad = [k for k in want if not got[k].startswith(want[k])]
if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
    bad.append("onnxruntime providers " + str(onnxruntime.get_available_providers()))
print(json.dumps(got))
sys.exit("pins mismatch: " + ", ".join(bad) if bad else 0)
"""


def step_verify(pins: dict, python: str) -> None:
    py = pins["python"]
    cuda = re.search(r"cu(\d+)(\d)$", py["torch_index"].rstrip("/"))
    want = {
        "torch": py["torch"],
        "sageattention": py["sageattention"],
        "onnxruntime_gpu": py["onnxruntime_gpu"],
        "python": py["version"],
        "cuda": f"{cuda.group(1)}.{cuda.group(2)}" if cuda else "",
    }
    run([python, "-c", VERIFY_CODE, json.dumps(want)])


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description="Install the image's Python stack from workflows/pins.json")
    p.add_argument("step", choices=["torch", "sageattention", "comfyui", "turbodiffusion", "verify"])
    p.add_argument("--pins", type=Path, required=True)
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--comfy-dir", type=Path, default=Path("/comfyui"))
    p.add_argument("--wheel-dir", type=Path, default=Path("/wheels"))
    p.add_argument("--wheel-url", default="")
    p.add_argument("--wheel-sha256", default="")
    args = p.parse_args(argv)
    pins = load_pins(args.pins)
    try:
        if args.step == "torch":
            step_torch(pins, args.python, args.pins)
        elif args.step == "sageattention":
            step_sageattention(pins, args.python, args.wheel_dir, args.wheel_url, args.wheel_sha256)
        elif args.step == "comfyui":
            step_comfyui(pins, args.python, args.comfy_dir)
        elif args.step == "turbodiffusion":
            step_turbodiffusion(pins, args.python, args.comfy_dir)
        else:
            step_verify(pins, args.python)
    except PinError as err:
        log(f"ERROR: {err}")
        return 1
    except subprocess.CalledProcessError as err:
        log(f"ERROR: command failed ({err.returncode}): {' '.join(map(str, err.cmd))}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
