#!/usr/bin/env bash
# Opt-in check of the image's Python environment, without Docker or a GPU (not in CI: it downloads
# about 8 GB from PyPI). It builds the environment with the image's own steps (builder/install_comfyui.py
# python + comfyui), starts ComfyUI on the CPU with every pinned custom node, fails on any
# IMPORT FAILED, and has ComfyUI validate every variant's graph at every precision
# (test/image/image-env.test.ts). SageAttention is not built (it needs nvcc); nothing else differs.
#
# Usage: builder/check_image_env.sh COMFYUI_DIR [--python PYTHON] [--venv DIR] [--clean]
#   COMFYUI_DIR  a ComfyUI checkout with the pinned custom nodes in custom_nodes/ (the image's clone,
#                or any copy at the commits of workflows/pins.json); used as it is, not cloned
#   --python     the Python to build the venv with (default python<pins python.version>)
#   --venv       where to build it (default .cache/image-env; reused when it is already complete)
#   --clean      remove the venv afterwards (default: kept, so a second run only re-checks)
# Prints the figures (download size, install time, packages, ComfyUI start time) at the end.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pins="$root/workflows/pins.json"
usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() {
  echo "check_image_env.sh: $*" >&2
  exit 2
}

comfy_dir=""
python=""
venv="$root/.cache/image-env"
clean=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --python) [[ -n ${2:-} ]] || die "--python needs a value"; python=$2; shift 2 ;;
    --venv) [[ -n ${2:-} ]] || die "--venv needs a value"; venv=$2; shift 2 ;;
    --clean) clean=1; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) [[ -z $comfy_dir ]] || die "one COMFYUI_DIR only"; comfy_dir=$1; shift ;;
  esac
done
[[ -n $comfy_dir ]] || { usage >&2; exit 2; }
[[ -f $comfy_dir/main.py ]] || die "$comfy_dir has no main.py: pass a ComfyUI checkout"
comfy_dir=$(cd "$comfy_dir" && pwd)

want=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["python"]["version"])' "$pins")
python=${python:-python$want}
command -v "$python" >/dev/null || die "no '$python' on PATH: the image runs Python $want; pass --python"
have=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[[ $have == "$want" ]] || die "$python is Python $have; the image runs $want (pins.json python.version)"

mkdir -p "$(dirname "$venv")"
free_gb=$(df -Pk "$(dirname "$venv")" | awk 'NR==2 {print int($4 / 1048576)}')
((free_gb >= 20)) || die "only ${free_gb} GiB free under $(dirname "$venv"); the environment needs about 15 GiB"

started=$(date +%s)
if [[ ! -x $venv/bin/python ]]; then
  "$python" -m venv "$venv"
fi
py="$venv/bin/python"
"$py" "$root/builder/install_comfyui.py" python --pins "$pins" --python "$py"
installed=$(date +%s)
"$py" "$root/builder/install_comfyui.py" comfyui --pins "$pins" --python "$py" --comfy-dir "$comfy_dir" --existing
ready=$(date +%s)

site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
packages=$("$py" -m pip list --format=freeze --disable-pip-version-check | wc -l)
echo "image-env: python $have, $packages packages, $(du -sh "$site" | cut -f1) in site-packages"
echo "image-env: install $((installed - started)) s, requirements check $((ready - installed)) s"

# ComfyUI on the CPU with every pinned pack: imports, node classes, graph validation (jest, opt-in).
IMAGE_ENV_COMFYUI_DIR="$comfy_dir" IMAGE_ENV_PYTHON="$py" \
  npm --prefix "$root" test -- test/image/image-env.test.ts
if ((clean)); then
  rm -rf "$venv"
fi
echo "image-env: all checks passed in $(($(date +%s) - started)) s"
