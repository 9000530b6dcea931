# syntax=docker/dockerfile:1
# The steadydancer-worker image: Python with PyTorch + SageAttention + onnxruntime-gpu, ComfyUI and the
# custom nodes at their pinned commits, ffmpeg, Node.js and the bundled handler, on NVIDIA's CUDA *base*
# image (driver glue only: torch's nvidia-* wheels are the one copy of the CUDA libraries).
# Models are baked in (MODELS=baked, one image layer per file) or read from a RunPod network volume
# (MODELS=volume).
#
# Versions come from workflows/python-constraints.txt (every Python package) and workflows/pins.json
# (Python and CUDA versions, commits, GPU architectures) through builder/; Node's from package.json.
# Nothing is repeated here. The build context is the repo root; this file sits there because RunPod's
# GitHub integration and Hub build ./Dockerfile (the Hub would prefer .runpod/Dockerfile if it existed).
#   builder/build.sh --precision fp8 --models baked      (tags, secrets, size: see its --help)
#   docker buildx build --platform linux/amd64 .           (defaults: fp8, all variants, baked)
# Nothing is downloaded when the worker starts.

# CUDA must match the CUDA of torch's wheels (pins.json python.cuda; a test checks it).
ARG CUDA_VERSION=12.8.1
ARG UBUNTU_VERSION=24.04
# baked | volume
ARG MODELS=baked
# fp8 | fp16 | gguf-q4_k_m | gguf-q5_k_m | gguf-q6_k (workflows/models.json precisions), and the variants
# whose files to bake ("all" or a comma list)
ARG PRECISION=fp8
ARG VARIANTS=all

# ---------------------------------------------------------------------------------------------
# Python stack, built in a CUDA devel image (nvcc for SageAttention; no GPU at build time).
FROM nvidia/cuda:${CUDA_VERSION}-devel-ubuntu${UBUNTU_VERSION} AS python-build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Kernel architectures for SageAttention; empty = pins.json gpu.arch_list.
ARG TORCH_CUDA_ARCH_LIST=""
# auto = as many nvcc processes as the builder's CPUs and memory allow (builder/install_comfyui.py).
ARG MAX_JOBS=auto
# Optional prebuilt SageAttention wheel instead of compiling it.
ARG SAGEATTENTION_WHEEL_URL=""
ARG SAGEATTENTION_WHEEL_SHA256=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
COPY builder/install_python.sh /opt/steadydancer/builder/
COPY workflows/pins.json workflows/python-constraints.txt /opt/steadydancer/workflows/
RUN /opt/steadydancer/builder/install_python.sh /opt/steadydancer/workflows/pins.json --dev --venv /opt/venv
ENV PATH=/opt/venv/bin:${PATH}
COPY builder/install_comfyui.py /opt/steadydancer/builder/
RUN python /opt/steadydancer/builder/install_comfyui.py python --pins /opt/steadydancer/workflows/pins.json
RUN TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST}" MAX_JOBS="${MAX_JOBS}" \
    python /opt/steadydancer/builder/install_comfyui.py sageattention --pins /opt/steadydancer/workflows/pins.json \
      --wheel-dir /wheels --wheel-url "${SAGEATTENTION_WHEEL_URL}" --wheel-sha256 "${SAGEATTENTION_WHEEL_SHA256}" \
 && pip install --no-cache-dir --no-deps /wheels/sageattention-*.whl \
 && rm -rf /wheels
RUN python /opt/steadydancer/builder/install_comfyui.py comfyui --pins /opt/steadydancer/workflows/pins.json \
      --comfy-dir /comfyui

# ---------------------------------------------------------------------------------------------
# Models: one stage, and so one layer of the final image, per large file (registries cap layer sizes,
# and layers pull in parallel). These stages depend on the manifest and the download script only:
# a change to package.json, the pins or the handler never downloads or pushes weights again.
FROM nvidia/cuda:${CUDA_VERSION}-base-ubuntu${UBUNTU_VERSION} AS model-fetcher
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY builder/download_models.py builder/fetch_model_slot.sh /opt/steadydancer/builder/
COPY workflows/models.json /opt/steadydancer/workflows/

# Each slot: the file(s) of these manifest ids that PRECISION and VARIANTS select, none for MODELS=volume.
# The Hugging Face token arrives as a BuildKit secret: it is never stored in a layer.
FROM model-fetcher AS model-diffusion
ARG MODELS PRECISION VARIANTS
RUN --mount=type=secret,id=hf_token,required=false /opt/steadydancer/builder/fetch_model_slot.sh steadydancer-fp8,steadydancer-fp16,steadydancer-gguf-q4_k_m,steadydancer-gguf-q5_k_m,steadydancer-gguf-q6_k
FROM model-fetcher AS model-text-encoder
ARG MODELS PRECISION VARIANTS
RUN --mount=type=secret,id=hf_token,required=false /opt/steadydancer/builder/fetch_model_slot.sh umt5-xxl-bf16
FROM model-fetcher AS model-pose
ARG MODELS PRECISION VARIANTS
RUN --mount=type=secret,id=hf_token,required=false /opt/steadydancer/builder/fetch_model_slot.sh vitpose-h-model,vitpose-h-data
FROM model-fetcher AS model-clip-vision
ARG MODELS PRECISION VARIANTS
RUN --mount=type=secret,id=hf_token,required=false /opt/steadydancer/builder/fetch_model_slot.sh clip-vision-h
FROM model-fetcher AS model-lora-lightx2v
ARG MODELS PRECISION VARIANTS
RUN --mount=type=secret,id=hf_token,required=false /opt/steadydancer/builder/fetch_model_slot.sh lightx2v-i2v-lora
FROM model-fetcher AS model-lora-rcm
ARG MODELS PRECISION VARIANTS
RUN --mount=type=secret,id=hf_token,required=false /opt/steadydancer/builder/fetch_model_slot.sh rcm-t2v-lora
FROM model-fetcher AS model-vae
ARG MODELS PRECISION VARIANTS
RUN --mount=type=secret,id=hf_token,required=false /opt/steadydancer/builder/fetch_model_slot.sh wan21-vae
FROM model-fetcher AS model-person-detector
ARG MODELS PRECISION VARIANTS
RUN --mount=type=secret,id=hf_token,required=false /opt/steadydancer/builder/fetch_model_slot.sh yolov10m
# turbo-fp8's model is made, not downloaded (builder/derive_model.py: the fp16 model and the lightx2v LoRA,
# merged and quantized to scaled float8; NumPy and ml_dtypes from the Python stack's venv). Only when VARIANTS
# names turbo-fp8: "all" leaves it out (a 32 GB download, ~16 GB more image).
FROM python-build AS model-diffusion-merged
ARG MODELS PRECISION VARIANTS
COPY builder/download_models.py builder/derive_model.py builder/fetch_model_slot.sh /opt/steadydancer/builder/
COPY workflows/models.json /opt/steadydancer/workflows/
RUN --mount=type=secret,id=hf_token,required=false /opt/steadydancer/builder/fetch_model_slot.sh --derive steadydancer-lightx2v-merged-fp8

# ---------------------------------------------------------------------------------------------
# Runtime base: CUDA base (driver glue, cudart), the pinned Python, Node.js, ffmpeg.
FROM nvidia/cuda:${CUDA_VERSION}-base-ubuntu${UBUNTU_VERSION} AS runtime-base
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# HF_HUB_OFFLINE: every weight is on disk; a stray Hugging Face call fails at once instead of hanging.
ENV DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
COPY builder/install_python.sh builder/install_node.sh /opt/steadydancer/builder/
COPY workflows/pins.json /opt/steadydancer/workflows/
COPY package.json /opt/steadydancer/package.json
RUN /opt/steadydancer/builder/install_python.sh /opt/steadydancer/workflows/pins.json \
 && /opt/steadydancer/builder/install_node.sh /opt/steadydancer/package.json /usr/local \
 && apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg \
 && rm -rf /var/lib/apt/lists/*
ENV PATH=/opt/venv/bin:${PATH}

# ---------------------------------------------------------------------------------------------
# The handler bundle (dist/handler.cjs, as scripts/build.mjs writes it).
FROM runtime-base AS bundle
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts ./scripts
COPY handler ./handler
COPY src ./src
RUN npm run build && test -s dist/handler.cjs

# ---------------------------------------------------------------------------------------------
# Where the worker looks for models.
FROM runtime-base AS env-volume
ENV MODELS_DIR=/runpod-volume/models

FROM runtime-base AS env-baked
ARG PRECISION
ENV MODELS_DIR=/comfyui/models MODEL_PRECISION=${PRECISION}

# ---------------------------------------------------------------------------------------------
# Final image. Large, rarely changing layers first (models, Python), the handler last. --link makes
# each copied layer independent of the layers below it, so it is reused (not rebuilt, not re-pushed)
# when only something underneath changes.
# hadolint ignore=DL3006
FROM env-${MODELS} AS final
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY --link --from=model-diffusion /models/ /comfyui/models/
COPY --link --from=model-text-encoder /models/ /comfyui/models/
COPY --link --from=model-pose /models/ /comfyui/models/
COPY --link --from=model-clip-vision /models/ /comfyui/models/
COPY --link --from=model-lora-lightx2v /models/ /comfyui/models/
COPY --link --from=model-lora-rcm /models/ /comfyui/models/
COPY --link --from=model-vae /models/ /comfyui/models/
COPY --link --from=model-person-detector /models/ /comfyui/models/
COPY --link --from=model-diffusion-merged /models/ /comfyui/models/
COPY --link --from=python-build /opt/venv /opt/venv
COPY --link --from=python-build /comfyui /comfyui
# ComfyUI reads extra_model_paths.yaml beside main.py: the network-volume folders.
COPY docker/extra_model_paths.yaml /comfyui/extra_model_paths.yaml
# The download script and manifest stay in the image: they also fill a network volume.
COPY builder/download_models.py builder/derive_model.py builder/install_comfyui.py /opt/steadydancer/builder/
COPY workflows/pins.json workflows/python-constraints.txt workflows/models.json /opt/steadydancer/workflows/
# The worker's start-up GPU check (docker/attention_check.py, run with ComfyUI's Python beside its boot)
# and its ComfyUI hook (cuDNN-first SDPA, optional memory cap, opt-in per-node timings).
COPY docker/attention_check.py /opt/steadydancer/attention_check.py
COPY docker/comfyui/steadydancer_runtime /comfyui/custom_nodes/steadydancer_runtime
# Fail the build if the stack differs from the pins or any custom node does not import (CPU: no GPU here).
# Bytecode for ComfyUI and the packs, and matplotlib's font cache, are made here once: otherwise every
# fresh container (each RunPod worker start) compiles ~500 modules and scans the fonts during ComfyUI's boot.
ARG IMPORT_CHECK=1
WORKDIR /comfyui
ENV MPLCONFIGDIR=/opt/steadydancer/matplotlib
RUN python /opt/steadydancer/builder/install_comfyui.py ldconfig --pins /opt/steadydancer/workflows/pins.json \
 && python /opt/steadydancer/builder/install_comfyui.py verify --pins /opt/steadydancer/workflows/pins.json \
 && python -m compileall -q -j 0 /comfyui \
 && python -c "import matplotlib.font_manager" \
 && if [ "${IMPORT_CHECK}" = 1 ]; then \
      python main.py --cpu --quick-test-for-ci --disable-auto-launch 2>&1 | tee /tmp/import-check.log \
      && ! grep -q "IMPORT FAILED" /tmp/import-check.log && rm -rf /tmp/import-check.log /comfyui/user; \
    fi
ENV COMFYUI_DIR=/comfyui \
    COMFYUI_PYTHON=/opt/venv/bin/python \
    NODE_ENV=production
WORKDIR /app
COPY --from=bundle /build/dist ./dist
# Loading the launcher as a module compiles the bundle into dist/.compile-cache: every worker start
# then reads V8's code from there instead of compiling 2 MB of JavaScript (README: start-up).
RUN node -e "require('/app/dist/handler.cjs')" && test -n "$(ls -A /app/dist/.compile-cache)"
# Source maps are opt-in (NODE_OPTIONS=--enable-source-maps): they cost start-up time and memory.
CMD ["node", "dist/handler.cjs"]
