#!/usr/bin/env bash
# One model slot of the image build (the Dockerfile's model-* stages, one image layer each): downloads
# the files of the given manifest ids that the build's PRECISION and VARIANTS select into SLOT_DEST
# (default /models), or nothing for MODELS=volume. MODELS, PRECISION and VARIANTS are the build args.
# With --derive the ids are derived entries, made by derive_model.py (needs NumPy and ml_dtypes), which
# makes one only when VARIANTS names its variant.
# Usage: fetch_model_slot.sh [--derive] ID[,ID...]
set -euo pipefail

derive=0
if [[ ${1:-} == --derive ]]; then derive=1; shift; fi
ids=${1:?usage: fetch_model_slot.sh [--derive] ID[,ID...]}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dest=${SLOT_DEST:-/models}
mkdir -p "$dest"
if [[ ${MODELS:?MODELS (baked or volume) must be set} != baked ]]; then
  echo "[models] MODELS=${MODELS}: nothing baked for ${ids}"
  exit 0
fi
if ((derive)); then
  exec python3 "$here/derive_model.py" --manifest "$here/../workflows/models.json" --dest "$dest" \
    --precision "${PRECISION:?PRECISION must be set}" --variants "${VARIANTS:?VARIANTS must be set}" \
    --ids "$ids" --token-file "${HF_TOKEN_FILE:-/run/secrets/hf_token}"
fi
exec python3 "$here/download_models.py" --manifest "$here/../workflows/models.json" --dest "$dest" \
  --precision "${PRECISION:?PRECISION must be set}" --variants "${VARIANTS:?VARIANTS must be set}" \
  --ids "$ids" --allow-empty --token-file "${HF_TOKEN_FILE:-/run/secrets/hf_token}"
