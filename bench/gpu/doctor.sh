#!/usr/bin/env bash
# After setup.sh: what the machine has, whether the attention kernels compute attention (the worker's
# own start-up check), and whether ComfyUI with every pinned pack imports. Writes into ${OUT:-/tmp/sd-out}.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
WORK=${GPU_WORK:-/tmp/sd}; OUTDIR=${OUT:-/tmp/sd-out}; mkdir -p "$OUTDIR"
# shellcheck disable=SC1091
source "$WORK/env.sh"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  for t in node ffmpeg ffprobe nvcc; do printf '%s: ' "$t"; command -v "$t" || echo missing; done
  node --version 2>/dev/null
  python3 -c 'import sys,torch,triton;print(sys.version.split()[0],torch.__version__,torch.version.cuda,triton.__version__)'
  python3 -m pip list 2>/dev/null | grep -iE '^(onnxruntime|transformers|sageattention|diffusers|safetensors|numpy|opencv) '
} > "$OUTDIR/doctor-env.txt" 2>&1
python3 docker/attention_check.py --modes sageattn,sdpa,sdpa_cudnn,sdpa_flash,sdpa_efficient --bench \
  > "$OUTDIR/attention-check.json" 2> "$OUTDIR/attention-check.err"
(cd "$COMFYUI_DIR" && timeout 300 python3 main.py --quick-test-for-ci --disable-auto-launch \
  --front-end-root "$WORK/frontend" > "$OUTDIR/comfy-import.log" 2>&1)
echo "IMPORT FAILED lines: $(grep -c 'IMPORT FAILED' "$OUTDIR/comfy-import.log")"
cat "$OUTDIR/doctor-env.txt"
