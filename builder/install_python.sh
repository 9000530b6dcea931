#!/usr/bin/env bash
# Installs the Python version pinned in workflows/pins.json (python.version) from the Ubuntu
# archive, or from the deadsnakes PPA when this Ubuntu release lacks it, and creates a venv.
# Usage: install_python.sh PINS_JSON VENV_DIR [--dev]   (--dev adds headers for building kernels)
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
packages=("python${version}" "python${version}-venv")
if [[ $dev == --dev ]]; then
  packages+=("python${version}-dev" build-essential git)
fi
apt-get install -y --no-install-recommends "${packages[@]}"
rm -rf /var/lib/apt/lists/*

"python${version}" -m venv "$venv"
"$venv/bin/python" -m pip install --no-cache-dir --upgrade pip wheel setuptools
echo "python ${version} in ${venv}: $("$venv/bin/python" --version)"
