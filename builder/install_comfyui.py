#!/usr/bin/env python3
"""Installs the Python side of the image from workflows/pins.json and the lock beside it.

Versions live in two files, each pin once: workflows/python-constraints.txt (the lock: every Python
package, exactly) and workflows/pins.json (the Python and CUDA versions, the commits of ComfyUI, the
custom nodes and SageAttention, the SageAttention GPU architectures). Steps, each a sub-command the
Dockerfile runs in its own layer:
  python         installs the whole lock from PyPI (torch's PyPI wheels are its CUDA build; the
                 nvidia-* wheels in the lock are the only CUDA libraries the image carries).
  sageattention  builds SageAttention at its pinned commit into a wheel with ninja (needs nvcc and
                 TORCH_CUDA_ARCH_LIST: there is no GPU at build time), with a compile parallelism
                 that fits the builder's memory; or fetches a given wheel and checks its sha256.
  comfyui        clones ComfyUI and every custom node at its full pinned commit (or, with
                 --existing, uses a checkout that is already there), installs their requirements
                 under the lock, and fails if anything installed is not pinned in the lock.
  verify         imports torch / sageattention / onnxruntime and compares them with the pins.
  ldconfig       lets the dynamic loader find the nvidia-* wheels' libraries (onnxruntime-gpu
                 loads cuDNN/cuBLAS by name; the runtime base image has none of its own).
Any mismatch or placeholder pin stops the build with a message naming the pin at fault.
Standard library only.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

PLACEHOLDER = re.compile(r"^0{40}$")
FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
LD_CONF = Path("/etc/ld.so.conf.d/steadydancer-nvidia-wheels.conf")
# Memory budgeted for one nvcc process compiling SageAttention's kernels, per GPU architecture it
# compiles at once (nvcc --threads runs the architectures side by side). An estimate, not measured
# here: heavily templated CUDA kernels take 1-3 GiB of compiler memory per architecture; 3 keeps a
# margin for the linker and the rest of the builder. MAX_JOBS overrides the result.
NVCC_GIB_PER_ARCH = 3.0


class PinError(Exception):
    pass


def log(message: str) -> None:
    print(f"[install] {message}", flush=True)


def run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    log("$ " + " ".join(cmd))
    subprocess.run(cmd, cwd=cwd, env=env, check=True)


def load_pins(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def canonical(name: str) -> str:
    """PEP 503 normalised project name (Pillow, pillow and PILLOW are one package)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_path(pins_path: Path) -> Path:
    return pins_path.parent / "python-constraints.txt"


def read_lock(pins_path: Path) -> dict[str, str]:
    """{canonical name: version} of the lock; refuses anything but one `name==version` per package."""
    pins: dict[str, str] = {}
    path = lock_path(pins_path)
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)", line)
        if not match:
            raise PinError(f"{path.name}:{number}: expected 'name==version', got {raw!r}")
        name = canonical(match.group(1))
        if name in pins:
            raise PinError(f"{path.name}:{number}: {match.group(1)} is pinned twice")
        pins[name] = match.group(2)
    return pins


def checked_commit(name: str, entry: dict) -> str:
    commit = str(entry.get("commit", "")).lower()
    if PLACEHOLDER.match(commit):
        raise PinError(f"pins.json: {name} still has the placeholder commit; put the validated full SHA there")
    if not FULL_SHA.match(commit):
        raise PinError(f"pins.json: {name}.commit must be a full 40-hex SHA, got {commit!r}")
    return commit


def pip(python: str, *args: str) -> None:
    run([python, "-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check", *args])


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


def step_python(python: str, pins_path: Path) -> None:
    read_lock(pins_path)  # refuse a malformed lock before downloading gigabytes
    lock = str(lock_path(pins_path))
    pip(python, "--only-binary=:all:", "-r", lock, "-c", lock)


# --- SageAttention ----------------------------------------------------------------------------

def available_memory_gib() -> float:
    """MemAvailable, bounded by a cgroup memory limit when the build runs under one."""
    gib = float("inf")
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                gib = int(line.split()[1]) / (1 << 20)
    except OSError:
        pass
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            value = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if value.isdigit() and int(value) < (1 << 60):
            gib = min(gib, int(value) / (1 << 30))
    return gib if gib != float("inf") else 8.0


def compile_parallelism(arch_list: str, cpus: int, mem_gib: float) -> tuple[int, int]:
    """(EXT_PARALLEL, MAX_JOBS) for SageAttention's setup.py.

    setup.py builds its extensions in EXT_PARALLEL threads (default: MAX_JOBS of them) and each runs
    ninja with MAX_JOBS nvcc processes, and each nvcc compiles up to 8 architectures at once
    (--threads=8): left alone, MAX_JOBS=8 means up to 64 nvcc processes. Here the product of the two
    is bounded by the CPUs and by the memory that many nvcc processes need.
    """
    archs = max(1, len([a for a in re.split(r"[;, ]+", arch_list) if a]))
    per_nvcc = NVCC_GIB_PER_ARCH * min(archs, 8)
    budget = max(1, min(cpus, int(mem_gib // per_nvcc)))
    ext_parallel = min(4, budget)  # setup.py has 4 extensions
    return ext_parallel, max(1, budget // ext_parallel)


def step_sageattention(pins: dict, python: str, wheel_dir: Path, wheel_url: str, wheel_sha256: str) -> None:
    sage = pins["python"]["sageattention"]
    version = sage["version"]
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
    commit = checked_commit("python.sageattention", sage)
    arch_list = os.environ.get("TORCH_CUDA_ARCH_LIST") or pins["gpu"]["arch_list"]
    if not shutil.which("ninja", path=str(Path(python).parent) + os.pathsep + os.environ.get("PATH", "")):
        raise PinError("ninja is not installed (it is in the lock: run the 'python' step first)")
    src = Path(tempfile.mkdtemp(prefix="sageattention-"))
    clone_at(sage["repo"], commit, src)
    env = dict(os.environ, TORCH_CUDA_ARCH_LIST=arch_list)
    env["PATH"] = str(Path(python).parent) + os.pathsep + env.get("PATH", "")
    if env.get("MAX_JOBS", "auto") in ("", "auto"):
        ext_parallel, max_jobs = compile_parallelism(arch_list, os.cpu_count() or 1, available_memory_gib())
        env["EXT_PARALLEL"], env["MAX_JOBS"] = str(ext_parallel), str(max_jobs)
    env.setdefault("EXT_PARALLEL", "1")
    log(f"sageattention {version} at {commit[:12]} for {arch_list}: EXT_PARALLEL={env['EXT_PARALLEL']} "
        f"MAX_JOBS={env['MAX_JOBS']} ({os.cpu_count()} CPUs, {available_memory_gib():.0f} GiB available)")
    # --no-build-isolation: setup.py imports the torch installed by the 'python' step.
    run([python, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(wheel_dir), str(src)], env=env)
    shutil.rmtree(src, ignore_errors=True)
    built = list(wheel_dir.glob(f"sageattention-{version}-*.whl"))
    if len(built) != 1:
        raise PinError(f"expected one sageattention-{version} wheel in {wheel_dir}, found {[p.name for p in built]}")


# --- ComfyUI and the custom nodes ---------------------------------------------------------------

def requirement_lines(req_file: Path, replace: dict[str, str]) -> list[str]:
    """The file's requirements with replaced names (e.g. opencv-python -> opencv-python-headless)."""
    out: list[str] = []
    for raw in req_file.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = REQUIREMENT_NAME.match(line)
        if match and canonical(match.group(1)) in {canonical(k) for k in replace}:
            target = next(v for k, v in replace.items() if canonical(k) == canonical(match.group(1)))
            line = target + line[match.end():]
        out.append(line)
    return out


def requirement_files(comfy_dir: Path, pins: dict) -> list[Path]:
    files = [comfy_dir / "requirements.txt"]
    files += [comfy_dir / "custom_nodes" / n["name"] / "requirements.txt" for n in pins["custom_nodes"]]
    return [f for f in files if f.exists()]


def install_requirements(python: str, pins: dict, pins_path: Path, comfy_dir: Path) -> None:
    replace = pins["python"].get("replace", {})
    lines = [line for f in requirement_files(comfy_dir, pins) for line in requirement_lines(f, replace)]
    lines += pins["python"].get("extra_requirements", [])
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="requirements-", delete=False) as tmp:
        tmp.write("\n".join(lines) + "\n")
    try:
        # Everything is already installed from the lock: this proves the lock satisfies every
        # requirement; anything it lacks would be installed here and is then caught by check_lock.
        pip(python, "--only-binary=:all:", "-c", str(lock_path(pins_path)), "-r", tmp.name)
    finally:
        os.unlink(tmp.name)


def installed(python: str) -> dict[str, str]:
    out = subprocess.run([python, "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
                         check=True, capture_output=True, text=True).stdout
    return {canonical(d["name"]): d["version"] for d in json.loads(out)}


def check_lock(python: str, pins: dict, pins_path: Path, allow_missing: tuple[str, ...] = ()) -> None:
    """Installed == lock (+ SageAttention): nothing unpinned, nothing missing, no other version."""
    lock = read_lock(pins_path)
    have = installed(python)
    extra = {"sageattention": pins["python"]["sageattention"]["version"]}
    problems = []
    for name, version in sorted(have.items()):
        want = lock.get(name, extra.get(name))
        if want is None:
            problems.append(f"{name}=={version} is installed but not pinned in python-constraints.txt")
        elif version.split("+")[0] != want:
            problems.append(f"{name} is {version}, the lock says {want}")
    for name in sorted(set(lock) - set(have) - set(allow_missing)):
        problems.append(f"{name}=={lock[name]} is pinned but not installed")
    if problems:
        raise PinError("the environment differs from the lock:\n  " + "\n  ".join(problems))
    log(f"environment matches the lock: {len(have)} packages")


def step_comfyui(pins: dict, python: str, pins_path: Path, comfy_dir: Path, existing: bool) -> None:
    if existing:
        for d in [comfy_dir, *(comfy_dir / "custom_nodes" / n["name"] for n in pins["custom_nodes"])]:
            if not d.is_dir():
                raise PinError(f"--existing: {d} does not exist")
        log(f"using the checkout in {comfy_dir} as it is (commits not checked: no clone)")
    else:
        comfy = pins["comfyui"]
        clone_at(comfy["repo"], checked_commit("comfyui", comfy), comfy_dir)
        for node in pins["custom_nodes"]:
            node_dir = comfy_dir / "custom_nodes" / node["name"]
            clone_at(node["repo"], checked_commit(f"custom_nodes[{node['name']}]", node), node_dir)
    install_requirements(python, pins, pins_path, comfy_dir)
    check_lock(python, pins, pins_path, allow_missing=("sageattention",))


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
bad = [k for k in want if got[k] != want[k]]
if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
    bad.append("onnxruntime providers " + str(onnxruntime.get_available_providers()))
print(json.dumps(got))
sys.exit("pins mismatch: " + ", ".join(bad) if bad else 0)
"""


def step_verify(pins: dict, python: str, pins_path: Path) -> None:
    lock = read_lock(pins_path)
    py = pins["python"]
    want = {
        "torch": lock["torch"],
        "sageattention": py["sageattention"]["version"],
        "onnxruntime_gpu": lock["onnxruntime-gpu"],
        "python": py["version"],
        "cuda": py["cuda"],
    }
    check_lock(python, pins, pins_path)
    run([python, "-c", VERIFY_CODE, json.dumps(want)])


def step_ldconfig(python: str) -> None:
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    dirs = sorted(str(p) for p in Path(site, "nvidia").glob("*/lib") if p.is_dir())
    if not dirs:
        raise PinError(f"no nvidia-* wheel libraries under {site}/nvidia: did the 'python' step run?")
    LD_CONF.write_text("\n".join(dirs) + "\n", encoding="utf-8")
    run(["ldconfig"])
    log(f"{len(dirs)} library folders of the nvidia-* wheels registered in {LD_CONF}")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description="Install the image's Python stack from workflows/pins.json and its lock")
    p.add_argument("step", choices=["python", "sageattention", "comfyui", "verify", "ldconfig"])
    p.add_argument("--pins", type=Path, required=True)
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--comfy-dir", type=Path, default=Path("/comfyui"))
    p.add_argument("--existing", action="store_true", help="comfyui: use the checkout in --comfy-dir, clone nothing")
    p.add_argument("--wheel-dir", type=Path, default=Path("/wheels"))
    p.add_argument("--wheel-url", default="")
    p.add_argument("--wheel-sha256", default="")
    args = p.parse_args(argv)
    pins = load_pins(args.pins)
    try:
        if args.step == "python":
            step_python(args.python, args.pins)
        elif args.step == "sageattention":
            step_sageattention(pins, args.python, args.wheel_dir, args.wheel_url, args.wheel_sha256)
        elif args.step == "comfyui":
            step_comfyui(pins, args.python, args.pins, args.comfy_dir, args.existing)
        elif args.step == "verify":
            step_verify(pins, args.python, args.pins)
        else:
            step_ldconfig(args.python)
    except PinError as err:
        log(f"ERROR: {err}")
        return 1
    except subprocess.CalledProcessError as err:
        log(f"ERROR: command failed ({err.returncode}): {' '.join(map(str, err.cmd))}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
