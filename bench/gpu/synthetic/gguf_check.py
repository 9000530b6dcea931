"""Loads a SteadyDancer .gguf through the pinned wrapper's own GGUF path, on the CPU without the weights:

1. WanVideoModelLoader.loadmodel on the file itself: the wrapper's load_gguf (gguf.GGUFReader, meta tensors,
   GGUFParameter) and its model detection from the tensors' shapes (quantization must come out "gguf").
2. The sampler's load_weights(gguf=True) as nodes_sampler.py calls it, on the meta device: every parameter
   the model needs taken from the file, its linears replaced by the wrapper's GGUF linears. Only the copy
   of the tensor bytes is left out (each tensor's data becomes a zero-stride view of its shape), so an
   11 GB file costs no memory; GGUFReader has already validated the byte layout against the file.
3. Shapes: each GGUF linear's unpacked shape and every other parameter's shape must be the model's.
4. Values: a few rows of each quantized type, dequantized by the wrapper's own code, must be finite.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from gguf import GGMLQuantizationType as Q

from .comfy_env import ComfyEnv, patched
from .diffusion import DIM, FFN_DIM, I2V_IN_CHANNELS, LOADER_SETTINGS, LoaderExpectationError, architecture_facts

GGUF_LINEARS = 40 * 12  # every block linear: q/k/v/o x2, k_img/v_img, ffn.0/ffn.2
# SteadyDancer's LayerNorm2D keeps (1, C, 1, 1) affine parameters; llama-quantize stores them as (C, 1, 1)
# (ggml drops leading size-1 dims) and the module's `x * weight + bias` broadcasts both alike.
BROADCAST_SAME_MODULES = ("LayerNorm2D",)
VALUE_ROWS = 4


class _Data:
    """A reader tensor's data for load_weights: the right shape and dtype, no bytes copied."""

    def __init__(self, data: np.ndarray) -> None:
        self.shape, self.dtype = data.shape, data.dtype

    def copy(self) -> np.ndarray:
        return np.broadcast_to(np.zeros((), self.dtype), self.shape)


class _Tensor:
    def __init__(self, t) -> None:
        self.name, self.tensor_type, self.data = t.name, t.tensor_type, _Data(t.data)


class _Reader:
    def __init__(self, reader) -> None:
        self.tensors = [_Tensor(t) for t in reader.tensors]


def _owner(module: torch.nn.Module, name: str) -> torch.nn.Module:
    for part in name.split(".")[:-1]:
        module = getattr(module, part)
    return module


def verify_gguf(env: ComfyEnv, model_name: str, model_shapes: dict[str, tuple[int, ...]]) -> dict:
    """Loads models/diffusion_models/<model_name> (a .gguf) as the workflow does; returns facts."""
    try:
        (patcher,) = env.model_loading.WanVideoModelLoader().loadmodel(model=model_name, **LOADER_SETTINGS)
    except ValueError as e:  # the wrapper's own refusals (no patch_embedding, wrong quantization)
        raise LoaderExpectationError(f"{model_name}: the loader refused it: {e}") from e
    transformer = patcher.model.diffusion_model
    readers = patcher.model["gguf_reader"]
    facts = architecture_facts(patcher)
    wanted = {"model_type": "i2v", "in_dim": I2V_IN_CHANNELS, "dim": DIM, "ffn_dim": FFN_DIM, "num_heads": 40,
              "num_layers": 40, "quantization": "gguf", "steadydancer": True}
    wrong = {k: (facts[k], v) for k, v in wanted.items() if facts[k] != v}
    if wrong or not readers:
        raise LoaderExpectationError(f"{model_name}: loader derived {wrong} (got, expected)")
    try:
        with patched(env.model_loading, "device", torch.device("meta")), \
                patched(env.model_loading, "tqdm", lambda items, **_: items), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch on the read-only zero-stride views
            env.model_loading.load_weights(transformer, patcher.model["sd"], base_dtype=torch.bfloat16,
                                           transformer_load_device=torch.device("meta"), patcher=patcher,
                                           gguf=True, reader=[_Reader(r) for r in readers])
    except KeyError as e:
        raise LoaderExpectationError(f"{model_name}: the model needs {e} and the file lacks it") from e

    gguf_param = env.import_wrapper("gguf.gguf_utils").GGUFParameter
    linears, bad = 0, []
    for name, p in transformer.named_parameters():
        want = model_shapes.get(name)
        if isinstance(p, gguf_param):
            linears += 1
            got = tuple(p.quant_shape)
        else:
            got = tuple(p.shape)
            if got != want and type(_owner(transformer, name)).__name__ in BROADCAST_SAME_MODULES:
                got = (1,) * (len(want or ()) - len(got)) + got
        if got != want:
            bad.append(f"{name} {got} (model {want})")
    if bad:
        raise LoaderExpectationError(f"{model_name}: {len(bad)} parameters of the wrong shape, e.g. {bad[:3]}")
    if linears != GGUF_LINEARS:
        raise LoaderExpectationError(f"{model_name}: {linears} GGUF linears, expected {GGUF_LINEARS}")
    used = {n for n, _ in transformer.named_parameters()}
    extra = [t.name for r in readers for t in r.tensors if t.name not in used]
    if extra:
        raise LoaderExpectationError(f"{model_name}: {len(extra)} tensors the loader never reads, e.g. {extra[:3]}")
    types: dict[str, int] = {}
    for r in readers:
        for t in r.tensors:
            types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
    facts.update({"gguf_linears": linears, "tensor_types": types, "values": check_values(env, readers)})
    return facts


def check_values(env: ComfyEnv, readers) -> dict[str, float | str]:
    """Per quantized type: the std of the first rows of its first tensor, dequantized by the wrapper."""
    utils = env.import_wrapper("gguf.gguf_utils")
    out: dict[str, float | str] = {}
    for r in readers:
        for t in r.tensors:
            if t.tensor_type in (Q.F16, Q.F32) or t.tensor_type.name in out:
                continue
            raw = np.array(t.data[:VALUE_ROWS])
            if not raw.any():
                out[t.tensor_type.name] = "all zero (--zeros file)"
                continue
            values = utils.dequantize_gguf_tensor(utils.GGUFParameter(torch.from_numpy(raw), quant_type=t.tensor_type))
            if not bool(torch.isfinite(values).all()):
                raise LoaderExpectationError(f"{t.name}: {t.tensor_type.name} blocks dequantize to non-finite values")
            out[t.tensor_type.name] = round(float(values.float().std()), 5)
    return out
