#!/usr/bin/env bash
# Installs the Python version pinned in workflows/pins.json (python.version) from the Ubuntu archive,
# or from the deadsnakes PPA when this Ubuntu release lacks it; with --venv also creates a venv with the
# pip, setuptools and wheel versions of the lock (workflows/python-constraints.txt, beside pins.json).
# Usage: install_python.sh PINS_JSON [--dev] [--venv DIR]
#   --dev   adds the toolchain and git for building (SageAttention, the git clones)
set -euo pipefail

usage="usage: install_python.sh PINS_JSON [--dev] [--venv DIR]"
pins=${1:?$usage}
shift
dev=0
venv=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --dev) dev=1; shift ;;
    --venv) venv=${2:?$usage}; shift 2 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends jq ca-certificates
version=$(jq -er '.python.version' "$pins")
if [[ ! $version =~ ^3\.[0-9]+$ ]]; then
  echo "pins.json python.version must be MAJOR.MINOR (e.g. 3.x), got '$version'" >&2
  exit 1
fi

if ! apt-cache show "python${version}-venv" >/dev/null 2>&1; then
  apt-get install -y --no-install-recommends software-properties-common gpg-agent
  add-apt-repository -y ppa:deadsnakes/ppa
  apt-get update
fi
# Headers and gcc also at runtime: Triton (SageAttention's quantisation kernels) compiles a small
# C launcher with them the first time a kernel runs.
packages=("python${version}" "python${version}-venv" "python${version}-dev" gcc libc6-dev)
if ((dev)); then
  packages+=(build-essential git)
fi
apt-get install -y --no-install-recommends "${packages[@]}"
rm -rf /var/lib/apt/lists/*

if [[ -n $venv ]]; then
  lock="$(dirname "$pins")/python-constraints.txt"
  tooling=$(grep -iE '^(pip|setuptools|wheel)==' "$lock" || true)
  if [[ $(wc -l <<<"$tooling") -ne 3 ]]; then
    echo "$lock must pin pip, setuptools and wheel (one line each), got: ${tooling:-nothing}" >&2
    exit 1
  fi
  "python${version}" -m venv "$venv"
  # shellcheck disable=SC2086 # one requirement per word
  "$venv/bin/python" -m pip install --no-cache-dir --disable-pip-version-check $tooling
  echo "python ${version} in ${venv}: $("$venv/bin/python" --version)"
else
  echo "python ${version}: $("python${version}" --version)"
fi
