#!/usr/bin/env bash
# Prepares a bare CUDA machine (no network; PyTorch already installed) to run the GPU benchmark from
# what bench/gpu/README.md says to carry in .gpu/ and .whl/: wheels, ComfyUI with the pinned packs,
# SageAttention built at the image's pinned commit, Node and ffmpeg. Idempotent within one machine's life.
#   bench/gpu/setup.sh sage   start only the SageAttention build, in the background
#   bench/gpu/setup.sh        everything (waits for that build); writes $GPU_WORK/env.sh to source
set -euo pipefail
cd "$(dirname "$0")/../.."
STAGE=${GPU_STAGE:-.gpu}
WORK=${GPU_WORK:-/tmp/sd}
mkdir -p "$WORK"
py=${PYTHON:-python3}

# Python packages the machine lacks (ComfyUI's and the packs' requirements), as carried wheels.
if [ -d .whl ] && [ ! -e "$WORK/site/.done" ]; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$WORK/site" .whl/*.whl
  touch "$WORK/site/.done"
fi
# PyAV is imported at module level by ComfyUI's video API; this graph never uses it (VHS writes the
# MP4 with the ffmpeg CLI). A stub keeps a 36 MB wheel off the transfer; any real use raises.
if [ ! -d "$WORK/stubs/av" ]; then
  mkdir -p "$WORK/stubs/av/subtitles"
  cat > "$WORK/stubs/av/__init__.py" <<'PY'
"""Benchmark stub: PyAV is not installed on this machine; the SteadyDancer graph does not use it."""
class _Missing:
    def __init__(self, *a, **k):
        raise RuntimeError("PyAV stub: not installed on the benchmark machine")
def __getattr__(name):
    return _Missing
PY
  echo 'from av import __getattr__  # noqa' > "$WORK/stubs/av/container.py"
  echo 'from av import __getattr__  # noqa' > "$WORK/stubs/av/error.py"
  : > "$WORK/stubs/av/subtitles/__init__.py"
  echo 'from av import __getattr__  # noqa' > "$WORK/stubs/av/subtitles/stream.py"
fi

# ComfyUI and the packs at their pinned commits, and a front-end stand-in (ComfyUI only needs an
# index.html when given --front-end-root).
if [ ! -d "$WORK/ComfyUI" ]; then
  tar -xJf "$STAGE/comfy-src.tar.xz" -C "$WORK"
  mkdir -p "$WORK/frontend" && echo '<html></html>' > "$WORK/frontend/index.html"
fi

# SageAttention at the image's pinned commit, built for this GPU (~4.5 min on 16 cores; a wheel
# brought back from an earlier run is used when present). `setup.sh sage` starts only this, in the
# background, so it overlaps writing the weights; a later plain run waits for it.
build_sage() {
  if ls "$STAGE"/sageattention-*.whl >/dev/null 2>&1; then
    "$py" -m pip install -q --no-deps --no-index --target "$WORK/sage" "$STAGE"/sageattention-*.whl
  elif ls "$STAGE"/sageattention-*.whl.xz >/dev/null 2>&1; then
    for f in "$STAGE"/sageattention-*.whl.xz; do xz -dc "$f" > "$WORK/$(basename "${f%.xz}")"; done
    "$py" -m pip install -q --no-deps --no-index --target "$WORK/sage" "$WORK"/sageattention-*.whl
  else
    rm -rf "$WORK/build" && mkdir -p "$WORK/build" && tar -xJf "$STAGE/sage-src.tar.xz" -C "$WORK/build"
    cap=$("$py" -c 'import torch;p=torch.cuda.get_device_properties(0);print(f"{p.major}.{p.minor}")')
    (cd "$WORK/build/SageAttention" && TORCH_CUDA_ARCH_LIST="$cap" MAX_JOBS=$(nproc) EXT_PARALLEL=4 \
      "$py" -m pip wheel -q --no-build-isolation --no-deps -w "$WORK/wheels" . )
    "$py" -m pip install -q --no-deps --no-index --target "$WORK/sage" "$WORK"/wheels/sageattention-*.whl
  fi
}
if [ "${SKIP_SAGE:-0}" = 1 ]; then
  [ "${1:-}" = sage ] && exit 0
elif [ "${1:-}" = sage ]; then
  if [ ! -e "$WORK/sage.started" ]; then
    touch "$WORK/sage.started"
    ( set +e; build_sage > "$WORK/sage-build.log" 2>&1; echo $? > "$WORK/sage.done" ) &
  fi
  exit 0
fi
if [ "${SKIP_SAGE:-0}" = 1 ]; then
  echo "setup: SageAttention skipped (SKIP_SAGE=1)"
elif [ -e "$WORK/sage.started" ]; then
  while [ ! -e "$WORK/sage.done" ]; do sleep 2; done
  [ "$(cat "$WORK/sage.done")" = 0 ] || { echo "setup: SageAttention build failed, see $WORK/sage-build.log" >&2; exit 1; }
elif ! PYTHONPATH="$WORK/sage" "$py" -c 'import sageattention' 2>/dev/null; then
  build_sage > "$WORK/sage-build.log" 2>&1
fi

# The worker's own ComfyUI hook (SDPA order, memory cap, benchmark timings), as the image installs it.
rm -rf "$WORK/ComfyUI/custom_nodes/steadydancer_runtime"
cp -r docker/comfyui/steadydancer_runtime "$WORK/ComfyUI/custom_nodes/"
# The wrapper's umT5 tokenizer data is missing from source copies: a stand-in of the same contract.
"$py" bench/gpu/make_tokenizer.py "$WORK/ComfyUI/custom_nodes/ComfyUI-WanVideoWrapper"
# As the image build does: bytecode for ComfyUI and the packs, matplotlib's font cache (else the first
# arm's ComfyUI boot pays for both and the next arms do not).
"$py" -m compileall -q -j 0 "$WORK/ComfyUI" >/dev/null || true
PYTHONPATH="$WORK/site" "$py" -c "import matplotlib.font_manager" 2>/dev/null || true

# Node 22 and ffmpeg/ffprobe when the machine lacks them (carried as xz-compressed binaries).
mkdir -p "$WORK/bin"
for tool in node ffmpeg ffprobe; do
  if ! command -v "$tool" >/dev/null && [ ! -x "$WORK/bin/$tool" ] && [ -f "$STAGE/$tool.xz" ]; then
    xz -dc "$STAGE/$tool.xz" > "$WORK/bin/$tool" && chmod +x "$WORK/bin/$tool"
  fi
done
# No ffprobe at all: OpenCV's stand-in (bench/gpu/ffprobe_shim.py) answers the fields we read.
if ! command -v ffprobe >/dev/null && [ ! -x "$WORK/bin/ffprobe" ]; then
  printf '#!/bin/sh\nexec %s %s "$@"\n' "$(command -v "$py")" "$PWD/bench/gpu/ffprobe_shim.py" > "$WORK/bin/ffprobe"
  chmod +x "$WORK/bin/ffprobe"
fi

cat > "$WORK/env.sh" <<ENV
export PATH="$WORK/bin:\$PATH"
export PYTHONPATH="$WORK/sage:$WORK/site:$WORK/stubs\${PYTHONPATH:+:\$PYTHONPATH}"
export SD_WORK="$WORK" COMFYUI_DIR="$WORK/ComfyUI" COMFYUI_PYTHON="$(command -v "$py")"
ENV
echo "setup: ready in $WORK (source $WORK/env.sh)"
