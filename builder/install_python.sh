#!/usr/bin/env bash
# Installs the Python version pinned in workflows/pins.json (python.version) from the Ubuntu
# archive, or from the deadsnakes PPA when this Ubuntu release lacks it, and creates a venv.
# Usage: install_python.sh PINS_JSON VENV_DIR [--dev]   (--dev adds the toolchain and git for building)
set -euo pipefail

pins=${1:?usage: install_python.sh PINS_JSON VENV_DIR [--dev]}
venv=${2:?usage: install_python.sh PINS_JSON VENV_DIR [--dev]}
dev=${3:-}

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
if [[ $dev == --dev ]]; then
  packages+=(build-essential git)
fi
apt-get install -y --no-install-recommends "${packages[@]}"
rm -rf /var/lib/apt/lists/*

"python${version}" -m venv "$venv"
"$venv/bin/python" -m pip install --no-cache-dir --upgrade pip wheel setuptools
echo "python ${version} in ${venv}: $("$venv/bin/python" --version)"
