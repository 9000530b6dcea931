"""umT5-xxl (WanVideoTextEncodeCached), the Wan 2.1 VAE (WanVideoVAELoader) and CLIP ViT-H
(ComfyUI's CLIPVisionLoader): keys and shapes from the model classes those loaders build."""
from __future__ import annotations

import os

import torch
from accelerate import init_empty_weights

from .comfy_env import ComfyEnv, patched
from .diffusion import LoaderExpectationError, StateDictSource
from .tensors import FileSpec, Fill, TensorSpec

CLIP_H_CONFIG = "clip_vision_config_h.json"
SYNTHETIC = {"format": "pt", "synthetic": "random values, shapes of the pinned loader"}


def _spec(named_shapes, dtype: torch.dtype, std: float) -> FileSpec:
    return FileSpec([TensorSpec(n, tuple(s), dtype, Fill.random(std)) for n, s in named_shapes], dict(SYNTHETIC))


def _unused(sd: dict, used: set[str], what: str) -> None:
    extra = [k for k in sd if k not in used]
    if extra:
        raise LoaderExpectationError(f"{what}: {len(extra)} keys the loader never reads, e.g. {extra[:3]}")


# --- umT5-xxl -------------------------------------------------------------------------------

def _t5_model(env: ComfyEnv):
    # As T5EncoderModel builds it (wanvideo/modules/t5.py): the encoder of umt5_xxl, empty weights.
    with init_empty_weights():
        return env.t5.umt5_xxl(encoder_only=True, return_tokenizer=False, dtype=torch.bfloat16, device="cpu")


def t5_spec(env: ComfyEnv, std: float) -> FileSpec:
    """The wrapper's own key format (token_embedding, blocks.N.attn.q, ...), which its loader
    takes as is; bf16 like umt5-xxl-enc-bf16.safetensors."""
    return _spec(((n, p.shape) for n, p in _t5_model(env).named_parameters()), torch.bfloat16, std)


class _NoTokenizer:
    """Stands in for the umT5 tokenizer, which lives in the wrapper's source tree (large files a
    source export may lack) and is not part of the weight file under test."""

    def __init__(self, *args, **kwargs) -> None:
        pass


def verify_t5(env: ComfyEnv, model_name: str, source: StateDictSource) -> dict:
    """LoadWanVideoT5TextEncoder.loadmodel as WanVideoTextEncodeCached calls it, then the
    parameter assignment WanVideoTextEncode does before encoding (nodes.py), on meta."""
    with patched(env.model_loading, "load_torch_file", lambda path, *a, **k: source(path)), \
            patched(env.t5, "HuggingfaceTokenizer", _NoTokenizer):
        (encoder,) = env.model_loading.LoadWanVideoT5TextEncoder().loadmodel(
            model_name, "bf16", "main_device", "disabled")
    model, sd = encoder["model"].model, encoder["model"].state_dict
    if encoder["model"].quantization != "disabled":
        raise LoaderExpectationError(f"{model_name}: loader chose quantization {encoder['model'].quantization}")
    used = set()
    for name, _ in model.named_parameters():
        if name not in sd:
            raise LoaderExpectationError(f"{model_name}: the text encoder needs {name} and the file lacks it")
        env.wrapper_utils.set_module_tensor_to_device(model, name, device="meta", dtype=torch.bfloat16, value=sd[name])
        used.add(name)
    _unused(sd, used, model_name)
    return {"params": sum(p.numel() for p in model.parameters())}


# --- Wan 2.1 VAE ----------------------------------------------------------------------------

def vae_spec(env: ComfyEnv, std: float) -> FileSpec:
    """WanVideoVAE's state dict without the "model." prefix the loader adds when it is absent
    (the layout of Kijai's Wan2_1_VAE_bf16.safetensors); bf16."""
    vae_module = env.import_wrapper("wanvideo.wan_video_vae")
    with init_empty_weights():
        vae = vae_module.WanVideoVAE(dtype=torch.bfloat16)
    shapes = [(k.removeprefix("model."), v.shape) for k, v in vae.state_dict().items()]
    if any(not k.startswith("model.") for k in vae.state_dict()):
        raise LoaderExpectationError("WanVideoVAE has state outside .model; the prefix rule no longer holds")
    return _spec(shapes, torch.bfloat16, std)


def verify_vae(env: ComfyEnv, model_name: str, source: StateDictSource | None) -> dict:
    """WanVideoVAELoader.loadmodel: a strict load_state_dict. source None reads the real file."""
    loader = env.model_loading.WanVideoVAELoader()
    try:
        if source is None:
            (vae,) = loader.loadmodel(model_name, "bf16")
        else:
            with patched(env.model_loading, "load_torch_file", lambda path, *a, **k: source(path)):
                (vae,) = loader.loadmodel(model_name, "bf16")
    except RuntimeError as e:  # load_state_dict's "Missing key(s)" / "Unexpected key(s)" / size mismatch
        raise LoaderExpectationError(f"{model_name}: {str(e)[:400]}") from e
    return {"params": sum(p.numel() for p in vae.parameters())}


# --- CLIP ViT-H -----------------------------------------------------------------------------

def clip_spec(env: ComfyEnv, std: float) -> FileSpec:
    """ComfyUI's ClipVisionModel built from clip_vision_config_h.json; fp16 like
    Comfy-Org's clip_vision_h.safetensors."""
    config = os.path.join(os.path.dirname(env.clip_vision.__file__), CLIP_H_CONFIG)
    with init_empty_weights():
        clip = env.clip_vision.ClipVisionModel(config)
    return _spec(((k, v.shape) for k, v in clip.get_sd().items()), torch.float16, std)


def verify_clip(env: ComfyEnv, clip_name: str, source: StateDictSource | None) -> dict:
    """What CLIPVisionLoader does (resolve under clip_vision, comfy.clip_vision.load), watching
    which config the key detection picks and what load_sd reports missing or unexpected."""
    seen: dict = {}
    base = env.clip_vision.ClipVisionModel

    class Watched(base):
        def __init__(self, json_config):
            super().__init__(json_config)
            seen["config"] = os.path.basename(json_config)

        def load_sd(self, sd):
            missing, unexpected = super().load_sd(sd)
            seen["missing"], seen["unexpected"] = list(missing), list(unexpected)
            return missing, unexpected

    path = env.folder_paths.get_full_path_or_raise("clip_vision", clip_name)
    with patched(env.clip_vision, "ClipVisionModel", Watched):
        if source is None:
            clip = env.clip_vision.load(path)
        else:
            with patched(env.clip_vision, "load_torch_file", lambda p, *a, **k: source(p)):
                clip = env.clip_vision.load(path)
    if clip is None or seen.get("config") != CLIP_H_CONFIG:
        raise LoaderExpectationError(f"{clip_name}: detected config {seen.get('config')}, expected {CLIP_H_CONFIG}")
    if seen["missing"] or seen["unexpected"]:
        raise LoaderExpectationError(f"{clip_name}: missing {seen['missing'][:3]}, unexpected {seen['unexpected'][:3]}")
    return {"params": sum(p.numel() for p in clip.model.parameters())}
