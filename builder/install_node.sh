#!/usr/bin/env bash
# Installs the Node.js the project itself pins (package.json devDependencies.node, the same
# version its npm scripts run on) from the official tarball, verified against SHASUMS256.txt.
# Usage: install_node.sh PACKAGE_JSON [PREFIX]
set -euo pipefail

package_json=${1:?usage: install_node.sh PACKAGE_JSON [PREFIX]}
prefix=${2:-/usr/local}

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends ca-certificates curl jq xz-utils
rm -rf /var/lib/apt/lists/*

version=$(jq -er '.devDependencies.node' "$package_json")
major=${version%%.*}
if [[ ! $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || ((major < 22)); then
  echo "package.json devDependencies.node must be an exact version >= 22, got '$version'" >&2
  exit 1
fi

base="https://nodejs.org/dist/v${version}"
tarball="node-v${version}-linux-x64.tar.xz"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
curl -fsSL --retry 5 --retry-all-errors -o "$work/$tarball" "$base/$tarball"
curl -fsSL --retry 5 --retry-all-errors -o "$work/SHASUMS256.txt" "$base/SHASUMS256.txt"
(cd "$work" && grep " ${tarball}\$" SHASUMS256.txt | sha256sum -c -)
tar -xJf "$work/$tarball" -C "$prefix" --strip-components=1 --no-same-owner
echo "node $("$prefix/bin/node" --version) in $prefix"
