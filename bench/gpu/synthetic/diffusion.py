"""The SteadyDancer diffusion model and the distill LoRAs, as WanVideoModelLoader reads them.

The architecture is never written down here. A handful of "seed" keys carry the facts the
loader derives the model from (patch_embedding's in_channels 36 -> i2v, dim 5120 -> 14B with 40
heads/40 layers, ffn 13824, the SteadyDancer marker key); the pinned loader builds its model from
them on the meta device and every key, shape and linear layer comes out of that model. The same
loader code then checks the result (or a file's header): it rebuilds the model from the full
state dict, runs the sampler's load_weights against it and applies LoRAs with WanVideoSetLoRAs.
A pin bump that changes what the loader expects fails here, loudly.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .comfy_env import ComfyEnv, patched
from .tensors import FileSpec, Fill, TensorSpec

# The facts the loader derives the architecture from (WanVideoModelLoader.loadmodel reads them
# from the shapes and presence of these keys).
DIM = 5120
FFN_DIM = 13824
TEXT_DIM = 4096
I2V_IN_CHANNELS = 36
T2V_IN_CHANNELS = 16
STEADYDANCER_MARKER = "condition_embedding_align.cross_attn.in_proj_bias"
SCALED_FP8_MARKER = "scaled_fp8"

# The workflow's loader settings (workflows/*.json node 10); attention_mode only picks a kernel at
# run time and "sdpa" needs no optional package.
LOADER_SETTINGS = {"base_precision": "bf16", "quantization": "disabled", "load_device": "offload_device",
                   "attention_mode": "sdpa", "rms_norm_function": "default"}

BLOCK_LINEAR = re.compile(r"^blocks\.\d+\.")

StateDictSource = Callable[[str], dict[str, torch.Tensor]]


class LoaderExpectationError(AssertionError):
    """The pinned loader no longer reads the synthetic file the way this generator assumes."""


def seed_state_dict(in_channels: int, i2v: bool, steadydancer: bool) -> dict[str, torch.Tensor]:
    def meta(*shape: int) -> torch.Tensor:
        return torch.empty(shape, dtype=torch.bfloat16, device="meta")

    sd = {
        "patch_embedding.weight": meta(DIM, in_channels, 1, 2, 2),
        "blocks.0.self_attn.k.weight": meta(DIM, DIM),
        "blocks.0.ffn.0.bias": meta(FFN_DIM),
        "blocks.0.ffn.2.weight": meta(DIM, FFN_DIM),
        "text_embedding.0.weight": meta(DIM, TEXT_DIM),
    }
    if i2v:
        sd["blocks.0.cross_attn.k_img.weight"] = meta(DIM, DIM)
    if steadydancer:
        sd[STEADYDANCER_MARKER] = meta(1)  # only its presence is read
    return sd


def load_model(env: ComfyEnv, model_name: str, source: StateDictSource):
    """Runs the pinned WanVideoModelLoader.loadmodel with load_torch_file answered by source."""
    with patched(env.model_loading, "load_torch_file", lambda path, *a, **k: source(path)):
        (patcher,) = env.model_loading.WanVideoModelLoader().loadmodel(model=model_name, **LOADER_SETTINGS)
    return patcher


def block_linears(transformer: nn.Module) -> list[tuple[str, nn.Linear]]:
    return [(name, m) for name, m in transformer.named_modules()
            if isinstance(m, nn.Linear) and BLOCK_LINEAR.match(name)]


def diffusion_spec(env: ComfyEnv, model_name: str, precision: str, std: float) -> FileSpec:
    """fp16: every parameter in fp16. fp8: the "fp8_e4m3fn_scaled" layout the loader detects:
    float8_e4m3fn weights with a float32 scalar scale_weight for each linear of the blocks, the
    rest bf16, and the scaled_fp8 marker (ComfyUI's own format: an empty tensor of the fp8 dtype)."""
    seed = seed_state_dict(I2V_IN_CHANNELS, i2v=True, steadydancer=True)
    transformer = load_model(env, model_name, lambda _path: seed).model.diffusion_model
    quantized = {f"{name}.weight" for name, _ in block_linears(transformer)}
    tensors: list[TensorSpec] = []
    for name, p in transformer.named_parameters():
        shape = tuple(p.shape)
        if precision == "fp16":
            tensors.append(TensorSpec(name, shape, torch.float16, Fill.random(std)))
        elif name in quantized:
            # weight * scale_weight is what CustomLinear computes: unit-normal fp8 values (finite,
            # well inside e4m3fn's +-448) scaled by std give the intended magnitude.
            tensors.append(TensorSpec(name, shape, torch.float8_e4m3fn, Fill.random(1.0)))
            scale = name.removesuffix(".weight") + ".scale_weight"
            tensors.append(TensorSpec(scale, (), torch.float32, Fill.const(std)))
        else:
            tensors.append(TensorSpec(name, shape, torch.bfloat16, Fill.random(std)))
    if precision == "fp8":
        tensors.append(TensorSpec(SCALED_FP8_MARKER, (0,), torch.float8_e4m3fn, Fill.const(0.0)))
    elif precision != "fp16":
        raise ValueError(f"unknown diffusion precision {precision!r} (fp8 or fp16)")
    return FileSpec(tensors, {"format": "pt", "synthetic": "random values, shapes of the pinned loader"})


@dataclass(frozen=True)
class DiffusionExpectation:
    precision: str
    params: int  # total parameters of the built model
    params_tolerance: int
    scaled_linears: int  # 0 for fp16


STEADYDANCER_MODULES = ("patch_embedding_fuse", "patch_embedding_ref_c", "condition_embedding_spatial",
                        "condition_embedding_temporal", "condition_embedding_align")


def architecture_facts(patcher) -> dict:
    """What the loader made of a file: the architecture it detected, its quantization, and whether
    SteadyDancer's extra modules came with it."""
    t = patcher.model.diffusion_model
    return {
        "model_type": t.model_type, "in_dim": t.in_dim, "dim": t.dim, "ffn_dim": t.ffn_dim,
        "num_heads": t.num_heads, "num_layers": t.num_layers, "quantization": patcher.model["quantization"],
        "steadydancer": all(hasattr(t, m) for m in STEADYDANCER_MODULES),
    }


def verify_diffusion(env: ComfyEnv, model_name: str, source: StateDictSource, expect: DiffusionExpectation):
    """Loads through WanVideoModelLoader + the sampler's load_weights; returns (patcher, facts)."""
    patcher = load_model(env, model_name, source)
    transformer = patcher.model.diffusion_model
    sd = patcher.model["sd"]
    facts = {
        **architecture_facts(patcher),
        "scaled_linears": sum(1 for m in transformer.modules() if getattr(m, "scale_weight", None) is not None),
        "params": sum(p.numel() for p in transformer.parameters()),
    }
    wanted = {"model_type": "i2v", "in_dim": I2V_IN_CHANNELS, "dim": DIM, "ffn_dim": FFN_DIM, "num_heads": 40,
              "num_layers": 40, "steadydancer": True, "scaled_linears": expect.scaled_linears,
              "quantization": "fp8_e4m3fn_scaled" if expect.precision == "fp8" else "disabled"}
    wrong = {k: (facts[k], v) for k, v in wanted.items() if facts[k] != v}
    if abs(facts["params"] - expect.params) > expect.params_tolerance:
        wrong["params"] = (facts["params"], expect.params)
    if wrong:
        raise LoaderExpectationError(f"{model_name}: loader derived {wrong} (got, expected)")
    # What the sampler does before the first step (nodes_sampler.py): assign every parameter
    # from the state dict; a key the model needs and the file lacks is a KeyError here.
    try:
        with patched(env.model_loading, "tqdm", lambda items, **_: items):  # its progress bar is noise here
            env.model_loading.load_weights(transformer, sd, patcher.model["weight_dtype"], base_dtype=torch.bfloat16,
                                           transformer_load_device=torch.device("meta"))
    except KeyError as e:
        raise LoaderExpectationError(f"{model_name}: the model needs {e} and the file lacks it") from e
    used = {n for n, _ in transformer.named_parameters()}
    extra = [k for k in sd if k not in used and not k.endswith(".scale_weight") and k != SCALED_FP8_MARKER]
    if extra:
        raise LoaderExpectationError(f"{model_name}: {len(extra)} keys the loader never reads, e.g. {extra[:3]}")
    return patcher, facts


def lora_spec(targets: list[tuple[str, int, int]], rank: int, std: float) -> FileSpec:
    """lora_down [rank, in] / lora_up [out, rank] / alpha per target linear, keys prefixed
    diffusion_model. as comfy.lora matches them against model_lora_keys_unet."""
    tensors: list[TensorSpec] = []
    for name, in_features, out_features in targets:
        key = f"diffusion_model.{name}"
        tensors.append(TensorSpec(f"{key}.lora_down.weight", (rank, in_features), torch.bfloat16, Fill.random(std)))
        tensors.append(TensorSpec(f"{key}.lora_up.weight", (out_features, rank), torch.bfloat16, Fill.random(std)))
        tensors.append(TensorSpec(f"{key}.alpha", (), torch.bfloat16, Fill.const(float(rank))))
    return FileSpec(tensors, {"format": "pt", "synthetic": "random values, shapes of the pinned loader"})


def lora_targets(env: ComfyEnv, model_name: str, base: str) -> list[tuple[str, int, int]]:
    """(name, in, out) of the block linears a LoRA trained on `base` patches in SteadyDancer:
    "i2v" (Wan 2.1 I2V 14B, SteadyDancer's base) all of them, "t2v" (Wan 2.1 T2V 14B) those a
    loader-built T2V model has (no k_img/v_img). Shapes come from the SteadyDancer model's
    weights: the T2V model the pinned wrapper builds has cross_attn.k/v declared with
    in_features=True (WanT2VCrossAttention's kv_dim receives qk_norm positionally); load_weights
    replaces those parameters with the file's [5120, 5120] tensors, so only the names are usable."""
    if base not in ("i2v", "t2v"):
        raise ValueError(f"unknown LoRA base {base!r}")
    steadydancer = seed_state_dict(I2V_IN_CHANNELS, i2v=True, steadydancer=True)
    model = load_model(env, model_name, lambda _path: steadydancer).model.diffusion_model
    targets = [(name, m.weight.shape[1], m.weight.shape[0]) for name, m in block_linears(model)]
    if base == "i2v":
        return targets
    t2v = seed_state_dict(T2V_IN_CHANNELS, i2v=False, steadydancer=False)
    names = {name for name, _ in block_linears(load_model(env, model_name, lambda _path: t2v).model.diffusion_model)}
    return [t for t in targets if t[0] in names]


def verify_lora(env: ComfyEnv, patcher, lora_name: str, source: StateDictSource, expected_patches: int) -> dict:
    """Applies the LoRA as the turbo workflows do (WanVideoLoraSelect, merge_loras false ->
    WanVideoSetLoRAs) and counts the patches the sampler will log ("Using N LoRA weight patches")."""
    (loras,) = env.model_loading.WanVideoLoraSelect().getlorapath(
        lora=lora_name, strength=1.0, unique_id=None, low_mem_load=False, merge_loras=False)
    try:
        with patched(env.model_loading, "load_torch_file", lambda path, *a, **k: source(path)):
            (lora_patcher,) = env.model_loading.WanVideoSetLoRAs().setlora(patcher, loras)
    except KeyError as e:  # comfy.lora found half of a lora_up/lora_down pair
        raise LoaderExpectationError(f"{lora_name}: the LoRA loader looked for {e}") from e
    patches = len(lora_patcher.patches)
    if patches != expected_patches:
        raise LoaderExpectationError(f"{lora_name}: {patches} LoRA weight patches, expected {expected_patches}")
    # The sampler computes lora_up @ lora_down reshaped to the weight (custom_linear.apply_lora):
    # each pair must span exactly the patched weight's [out, in].
    weights = patcher.model.state_dict()
    wrong = [key for key, entries in lora_patcher.patches.items() for entry in entries
             if (entry[1].weights[0].shape[0], entry[1].weights[1].shape[1]) != tuple(weights[key].shape)
             or entry[1].weights[0].shape[1] != entry[1].weights[1].shape[0]]
    if wrong:
        raise LoaderExpectationError(f"{lora_name}: {len(wrong)} LoRA pairs do not fit their weight, e.g. {wrong[0]}")
    return {"lora_patches": patches}
