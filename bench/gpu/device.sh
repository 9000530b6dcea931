#!/usr/bin/env bash
# The whole GPU benchmark in one call on a bare CUDA machine (bench/gpu/README.md):
# setup (SageAttention builds in the background while the synthetic weights are written), then
# bench/gpu/run.mjs with the given arguments. Results land in bench/results/ and, with logs, in $OUT.
#   bench/gpu/device.sh [--precision fp8|fp16] [run.mjs arguments...]
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
export GPU_WORK=${GPU_WORK:-/tmp/sd}
OUTDIR=${OUT:-/tmp/sd-out}
mkdir -p "$OUTDIR" "$GPU_WORK"
precision=fp8
if [ "${1:-}" = --precision ]; then precision=$2; shift 2; fi
t0=$(date +%s)
stamp() { echo "[device $(( $(date +%s) - t0 )) s] $*"; }

bash bench/gpu/setup.sh sage || exit 1
stamp "SageAttention build started"
models="$GPU_WORK/ComfyUI/models"
if [ ! -e "$models/synthetic-weights-$precision.json" ]; then
  # Specs come from the loaders built on the CPU (CUDA hidden), values from a CPU random pool.
  CUDA_VISIBLE_DEVICES='' PYTHONPATH="$GPU_WORK/site:$GPU_WORK/stubs" python3 bench/gpu/make_weights.py --device cpu --comfy-dir "$GPU_WORK/ComfyUI" \
    --root "$models" --precision "$precision" --pose-size "${POSE_SIZE:-tiny}" \
    --manifest "$models/synthetic-weights-$precision.json" > "$GPU_WORK/weights-$precision.log" 2>&1 \
    || { tail -30 "$GPU_WORK/weights-$precision.log"; exit 1; }
fi
stamp "weights written: $(tail -1 "$GPU_WORK/weights-$precision.log")"
bash bench/gpu/setup.sh > "$GPU_WORK/setup.log" 2>&1 || { tail -30 "$GPU_WORK/setup.log" "$GPU_WORK/sage-build.log"; exit 1; }
stamp "setup done"
# shellcheck disable=SC1091
source "$GPU_WORK/env.sh"
export MODELS_DIR="$models" GPU_CHECK_SCRIPT="$PWD/docker/attention_check.py" MODEL_PRECISION="$precision"
export COMFYUI_ARGS="--front-end-root $GPU_WORK/frontend --disable-api-nodes ${EXTRA_COMFYUI_ARGS:-}"
# A freshly built SageAttention wheel comes back (xz) so the next run can skip the build.
for w in "$GPU_WORK"/wheels/sageattention-*.whl; do
  [ -f "$w" ] && [ ! -e "$OUTDIR/$(basename "$w").xz" ] && xz -T0 -6 -c "$w" > "$OUTDIR/$(basename "$w").xz"
done
# Each arm's result is written straight into $OUT, so a run cut short still returns what finished.
node bench/gpu/run.mjs --precision "$precision" --work "$GPU_WORK/bench" --out "$OUTDIR" "$@"
rc=$?
stamp "runner exit $rc"
tar -czf "$OUTDIR/gpu-logs.tgz" --exclude='*.mp4' --exclude='*.png' -C "$GPU_WORK" \
  bench setup.log sage-build.log "weights-$precision.log" 2>/dev/null
exit $rc
