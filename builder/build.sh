#!/usr/bin/env bash
# Builds the worker image for linux/amd64 with docker buildx and an immutable tag, optionally pushes
# it, and prints the tag and size. Run from anywhere; the build context is the repo root.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: builder/build.sh [options]
  --precision P            weights to bake: fp8 (default), fp16, gguf-q4_k_m, gguf-q5_k_m or gguf-q6_k
                           (a value of workflows/models.json precisions)
  --models baked|volume    bake models into the image, or read /runpod-volume/models (default baked)
  --variants LIST          variants whose files to bake: "all" or e.g. "turbo,quality" (default all)
  --repo NAME              image repository, e.g. docker.io/me/steadydancer-worker (default steadydancer-worker,
                           local only; --push needs a registry repository)
  --version V              version part of the tag (default: package.json version + git commit)
  --push                   push to --repo instead of loading locally; refuses a tag the registry already has
  --cache REF              registry ref used as BuildKit's layer cache (read and written, all stages)
  --hf-token-file FILE     Hugging Face token file (else $HF_TOKEN, if set) passed as a build secret
  --sage-wheel-url URL     use a prebuilt SageAttention wheel instead of compiling it
  --sage-wheel-sha256 HEX  its sha256 (required with --sage-wheel-url)
  --arch-list LIST         TORCH_CUDA_ARCH_LIST for SageAttention's kernels (default: pins.json gpu.arch_list)
  --allow-dirty            allow --push from a work tree with uncommitted changes
  --dry-run                print what would run, run nothing
USAGE
}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
precision=fp8
models=baked
variants=all
repo=steadydancer-worker
repo_given=0
version=""
push=0
dry_run=0
allow_dirty=0
hf_token_file=""
cache_ref=""
sage_wheel_url=""
sage_wheel_sha256=""
arch_list=""

die() {
  echo "build.sh: $*" >&2
  exit 2
}

need_value() {
  [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value (see --help)"
}

while [[ $# -gt 0 ]]; do
  case $1 in
    --precision) need_value "$@"; precision=$2; shift 2 ;;
    --models) need_value "$@"; models=$2; shift 2 ;;
    --variants) need_value "$@"; variants=$2; shift 2 ;;
    --repo) need_value "$@"; repo=$2; repo_given=1; shift 2 ;;
    --version) need_value "$@"; version=$2; shift 2 ;;
    --push) push=1; shift ;;
    --hf-token-file) need_value "$@"; hf_token_file=$2; shift 2 ;;
    --cache) need_value "$@"; cache_ref=$2; shift 2 ;;
    --sage-wheel-url) need_value "$@"; sage_wheel_url=$2; shift 2 ;;
    --sage-wheel-sha256) need_value "$@"; sage_wheel_sha256=$2; shift 2 ;;
    --arch-list) need_value "$@"; arch_list=$2; shift 2 ;;
    --allow-dirty) allow_dirty=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

# --- validate against the manifests (no jq/python needed on the build machine) ----------------
[[ $models == baked || $models == volume ]] || die "--models must be baked or volume, got '$models'"
[[ $precision =~ ^[a-z0-9][a-z0-9_-]*$ ]] || die "--precision must be a simple name like fp8 or gguf-q5_k_m, got '$precision'"
# One line without white space, so a pretty-printed array still matches "key":[...,"value",...].
manifest=$(tr -d ' \t\r\n' <"$root/workflows/models.json")
grep -Eq "\"precisions\":\[[^]]*\"${precision}\"" <<<"$manifest" \
  || die "no file in workflows/models.json has precision '$precision'"
if [[ $variants != all ]]; then
  [[ $variants =~ ^[a-z0-9-]+(,[a-z0-9-]+)*$ ]] || die "--variants must be 'all' or a comma list, got '$variants'"
  IFS=, read -r -a variant_list <<<"$variants"
  for v in "${variant_list[@]}"; do
    grep -Eq "\"variants\":\[[^]]*\"${v}\"" <<<"$manifest" \
      || die "variant '$v' is not used by any file in workflows/models.json"
  done
fi
if [[ -n $sage_wheel_url && ! $sage_wheel_sha256 =~ ^[0-9a-f]{64}$ ]]; then
  die "--sage-wheel-url needs --sage-wheel-sha256 (64 lowercase hex digits)"
fi
[[ -z $hf_token_file || -f $hf_token_file ]] || die "--hf-token-file '$hf_token_file' does not exist"
if ((push)) && [[ $repo_given == 0 || $repo != */* ]]; then
  die "--push needs --repo with a registry repository, e.g. docker.io/me/steadydancer-worker or ghcr.io/me/steadydancer-worker"
fi

# --- the immutable tag ---------------------------------------------------------------------------
dirty=0
if [[ -z $version ]]; then
  pkg_version=$(grep -m1 -E '^\s*"version"\s*:' "$root/package.json" | sed -E 's/.*"version"\s*:\s*"([^"]+)".*/\1/')
  commit=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null) \
    || die "not a git checkout: pass --version"
  version="${pkg_version}-${commit}"
  if [[ -n $(git -C "$root" status --porcelain 2>/dev/null) ]]; then
    dirty=1
    version="${version}-dirty"
  fi
fi
if [[ $models == baked ]]; then
  flavour="${precision}-baked"
  [[ $variants == all ]] || flavour="${flavour}-${variants//,/.}"
else
  flavour=volume # a volume image holds no weights: one image serves every precision
fi
tag="${repo}:${version}-${flavour}"
[[ ${tag##*:} =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "'${tag##*:}' is not a valid image tag"
if ((push && dirty && !allow_dirty)); then
  die "refusing to push from a dirty work tree (the tag must name a commit); commit, or pass --allow-dirty"
fi

# --- the command -----------------------------------------------------------------------------------
build_args=(
  "MODELS=${models}"
  "PRECISION=${precision}"
  "VARIANTS=${variants}"
)
[[ -n $arch_list ]] && build_args+=("TORCH_CUDA_ARCH_LIST=${arch_list}")
[[ -n $sage_wheel_url ]] && build_args+=("SAGEATTENTION_WHEEL_URL=${sage_wheel_url}" "SAGEATTENTION_WHEEL_SHA256=${sage_wheel_sha256}")

# --push sends the layers straight to the registry (a baked image is ~45 GB: no second copy in the
# local image store); otherwise the image is loaded into the local store. No provenance attestation:
# it turns the single-platform manifest into an index with an "unknown/unknown" entry.
output=--load
((push)) && output=--push
cmd=(docker buildx build --platform linux/amd64 --provenance=false --file "$root/Dockerfile" --tag "$tag" "$output")
for arg in "${build_args[@]}"; do
  cmd+=(--build-arg "$arg")
done
if [[ -n $cache_ref ]]; then
  cmd+=(--cache-from "type=registry,ref=${cache_ref}" --cache-to "type=registry,ref=${cache_ref},mode=max")
fi
# The token is a secret mount, never a build arg: it stays out of the image and its history.
if [[ -n $hf_token_file ]]; then
  cmd+=(--secret "id=hf_token,src=${hf_token_file}")
elif [[ -n ${HF_TOKEN:-} ]]; then
  cmd+=(--secret "id=hf_token,env=HF_TOKEN")
fi
cmd+=("$root")

echo "tag: $tag"
for arg in "${build_args[@]}"; do
  echo "build-arg: $arg"
done
if ((dry_run)); then
  ((push)) && echo "would check: docker buildx imagetools inspect $tag (must not exist)"
  echo "would run: ${cmd[*]}"
  if ((push)); then
    echo "would print: the image size (docker buildx imagetools inspect --raw $tag, layers summed)"
  else
    echo "would print: the image size (docker image inspect $tag)"
  fi
  exit 0
fi

command -v docker >/dev/null || die "docker is not installed"
docker buildx version >/dev/null 2>&1 \
  || die "docker buildx is not available (the build uses BuildKit features: secrets, COPY --link); install the buildx plugin"
if ((push)) && docker buildx imagetools inspect "$tag" >/dev/null 2>&1; then
  die "$tag already exists in the registry; tags are immutable: bump the version or commit"
fi
"${cmd[@]}"
echo "built: $tag"
if ((push)); then
  # Compressed size as pulled: the layers of the pushed manifest.
  size_bytes=$(docker buildx imagetools inspect --raw "$tag" | grep -oE '"size": *[0-9]+' | awk -F: '{s += $2} END {printf "%.0f", s}')
  echo "pushed: $tag"
  echo "size: $((size_bytes / 1000000)) MB compressed in the registry (RunPod's limit is 80 GB)"
else
  size_bytes=$(docker image inspect --format '{{.Size}}' "$tag")
  echo "size: $((size_bytes / 1000000)) MB uncompressed (RunPod's limit is 80 GB)"
fi
