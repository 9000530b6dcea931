#!/usr/bin/env bash
# The whole GPU benchmark in one call on a bare CUDA machine (bench/gpu/README.md):
# setup (SageAttention builds in the background while the synthetic weights are written), then
# bench/gpu/run.mjs with the given arguments, or once per line of a plan file. Results land in
# bench/results/ and, with logs, in $OUT. Setup and weights are kept for the machine's life, so a
# second call on the same (warm) machine goes straight to the runs.
#   bench/gpu/device.sh [--precision P[,P...]] [run.mjs arguments...]
#   bench/gpu/device.sh [--precision P[,P...]] --plan bench/gpu/plans/FILE.txt
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
export GPU_WORK=${GPU_WORK:-/tmp/sd}
OUTDIR=${OUT:-/tmp/sd-out}
mkdir -p "$OUTDIR" "$GPU_WORK"
precision=fp8
plan=""
while [ $# -gt 0 ]; do
  case $1 in
    --precision) precision=$2; shift 2 ;;
    --plan) plan=$2; shift 2 ;;
    *) break ;;
  esac
done
if [ -n "$plan" ] && [ ! -f "$plan" ]; then echo "device.sh: no plan file $plan" >&2; exit 2; fi
weights_tag=${precision//,/+}
t0=$(date +%s)
stamp() { echo "[device $(( $(date +%s) - t0 )) s] $*"; }

bash bench/gpu/setup.sh sage || exit 1
stamp "SageAttention build started"
models="$GPU_WORK/ComfyUI/models"
if [ ! -e "$models/synthetic-weights-$weights_tag.json" ]; then
  # Specs come from the loaders built on the CPU (CUDA hidden), values from a CPU random pool.
  CUDA_VISIBLE_DEVICES='' PYTHONPATH="$GPU_WORK/site:$GPU_WORK/stubs" python3 bench/gpu/make_weights.py --device cpu --comfy-dir "$GPU_WORK/ComfyUI" \
    --root "$models" --precision "$precision" --pose-size "${POSE_SIZE:-tiny}" ${WEIGHT_VARIANTS:+--variants "$WEIGHT_VARIANTS"} \
    --manifest "$models/synthetic-weights-$weights_tag.json" > "$GPU_WORK/weights-$weights_tag.log" 2>&1 \
    || { tail -30 "$GPU_WORK/weights-$weights_tag.log"; exit 1; }
fi
stamp "weights written: $(tail -1 "$GPU_WORK/weights-$weights_tag.log")"
bash bench/gpu/setup.sh > "$GPU_WORK/setup.log" 2>&1 || { tail -30 "$GPU_WORK/setup.log" "$GPU_WORK/sage-build.log"; exit 1; }
stamp "setup done"
# shellcheck disable=SC1091
source "$GPU_WORK/env.sh"
# A run.mjs line without --precision runs the first of the precisions written.
export MODELS_DIR="$models" GPU_CHECK_SCRIPT="$PWD/docker/attention_check.py" MODEL_PRECISION="${precision%%,*}"
export COMFYUI_ARGS="--front-end-root $GPU_WORK/frontend --disable-api-nodes ${EXTRA_COMFYUI_ARGS:-}"
# A freshly built SageAttention wheel comes back (debug sections stripped, xz) so the next run can skip the build.
for w in "$GPU_WORK"/wheels/sageattention-*.whl; do
  [ -f "$w" ] && [ ! -e "$OUTDIR/$(basename "$w").xz" ] && python3 bench/gpu/slim_wheel.py "$w" "$OUTDIR/$(basename "$w").xz"
done
# BOOT_PROFILE=1: where ComfyUI's boot goes, before the runs. One boot with the benchmark's arguments under
# `python -X importtime`, stopped once the nodes are loaded (--quick-test-for-ci): the raw log and its tree.
if [ "${BOOT_PROFILE:-0}" = 1 ]; then
  read -r -a comfy_args <<< "$COMFYUI_ARGS"
  boot_t0=$(date +%s%N)
  (cd "$COMFYUI_DIR" && "$COMFYUI_PYTHON" -X importtime main.py --quick-test-for-ci --disable-auto-launch \
    --listen 127.0.0.1 --port 18990 "${comfy_args[@]}") > "$OUTDIR/boot-comfyui.log" 2> "$OUTDIR/boot-importtime.log"
  stamp "boot profile: $(( ($(date +%s%N) - boot_t0) / 1000000 )) ms to nodes loaded"
  python3 bench/gpu/import_times.py "$OUTDIR/boot-importtime.log" > "$OUTDIR/boot-imports.txt"
  gzip -f "$OUTDIR/boot-importtime.log"
fi
# Each arm's result is written straight into $OUT, so a run cut short still returns what finished.
rc=0
if [ -n "$plan" ]; then
  # One run.mjs call per plan line (its arguments, split on white space); a failed line does not stop the rest.
  while read -r line || [ -n "$line" ]; do
    case $line in '' | '#'*) continue ;; esac
    read -r -a args <<< "$line"
    stamp "plan: ${args[*]}"
    node bench/gpu/run.mjs --work "$GPU_WORK/bench" --out "$OUTDIR" "${args[@]}" < /dev/null || rc=$?
  done < "$plan"
else
  node bench/gpu/run.mjs --precision "${precision%%,*}" --work "$GPU_WORK/bench" --out "$OUTDIR" "$@"
  rc=$?
fi
stamp "runner exit $rc"
tar -czf "$OUTDIR/gpu-logs.tgz" --exclude='*.mp4' --exclude='*.png' -C "$GPU_WORK" \
  bench setup.log sage-build.log "weights-$weights_tag.log" 2>/dev/null
# The device tool brings back at most 8 files from $OUT: profiles and the boot profile go in one archive.
mapfile -t extras < <(cd "$OUTDIR" && ls profile-* boot-* 2>/dev/null)
if [ "${#extras[@]}" -gt 0 ]; then
  tar -czf "$OUTDIR/profiles.tgz" -C "$OUTDIR" "${extras[@]}" && (cd "$OUTDIR" && rm -f "${extras[@]}")
fi
exit $rc
