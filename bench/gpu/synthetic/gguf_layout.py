"""SteadyDancer as MCG-NJU's GGUF files hold it: which tensor gets which GGML type and shape.

MCG-NJU/SteadyDancer-GGUF was made with ComfyUI-GGUF's tools from Kijai's fp16 file (their README and
kijai/ComfyUI-WanVideoWrapper#1702): tools/convert.py writes an F16 GGUF and sets 5-D tensors aside,
llama-quantize patched with tools/lcpp.patch quantizes it, tools/fix_5d_tensors.py adds the 5-D tensors
back as F32. The rules below are those tools' rules for the "wan" architecture; names and shapes come
from the pinned loader (the fp16 spec of diffusion.py), never from a table. What the tools leave to the
input file is assumed from our fp16 spec: every tensor fp16 (Kijai's file may keep norms in fp32, which
would make them F32 here: a few MB).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import gguf
from gguf import GGMLQuantizationType as Q

from .tensors import FileSpec

ARCH = "wan"
# GGUF holds at most 4 dims for llama.cpp; convert.py sets larger tensors aside (fix_5d_tensors.py).
MAX_QUANTIZE_DIMS = 4
# K-quants pack rows in blocks of 256 values: a row (ne[0], torch's last dim) that is not a multiple
# falls back to F16 (lcpp.patch, img_tensor_get_type).
QK_K = 256
# lcpp.patch: names of the "wan" architecture llama-quantize keeps as they are.
WAN_KEEP = ("modulation.", "patch_embedding.", "text_embedding.", "time_projection.", "time_embedding.",
            "img_emb.", "head.")
# img_tensor_get_type: attention v and the FFN's second linear get a larger type in the _M mixes.
V_NAMES = ("attn_v.weight", ".to_v.weight", ".v.weight", ".attn.w1v.weight", ".attn.w2v.weight",
           "_attn.v_proj.weight")
FFN_DOWN_NAMES = ("ffn_down", ".ffn.2.weight", ".ff.net.2.weight", ".mlp.layer2.weight",
                  ".adaln_modulation_mlp.2.weight", ".feed_forward.w2.weight")


@dataclass(frozen=True)
class Quant:
    file_type: gguf.LlamaFileType
    default: Q  # llama-quantize's type for the file type
    v: Q  # attention v
    ffn_down: Q  # ffn.2


QUANTS: dict[str, Quant] = {
    "gguf-q4_k_m": Quant(gguf.LlamaFileType.MOSTLY_Q4_K_M, Q.Q4_K, Q.Q6_K, Q.Q6_K),
    "gguf-q5_k_m": Quant(gguf.LlamaFileType.MOSTLY_Q5_K_M, Q.Q5_K, Q.Q6_K, Q.Q6_K),
    "gguf-q6_k": Quant(gguf.LlamaFileType.MOSTLY_Q6_K, Q.Q6_K, Q.Q6_K, Q.Q6_K),
}


@dataclass(frozen=True)
class GGUFTensor:
    name: str
    shape: tuple[int, ...]  # as the GGUF reader returns it (numpy order), before any byte packing
    qtype: Q
    model_shape: tuple[int, ...]  # the parameter's shape in the model

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        block, type_size = gguf.GGML_QUANT_SIZES[self.qtype]
        return self.numel // block * type_size

    @property
    def byte_shape(self) -> tuple[int, ...]:
        """The numpy shape of the reader's data (uint8 rows of packed blocks for quantized types)."""
        if self.qtype in (Q.F16, Q.F32):
            return self.shape
        return tuple(gguf.quant_shape_to_byte_shape(self.shape, self.qtype))

    @property
    def quantized(self) -> bool:
        return self.qtype not in (Q.F16, Q.F32)


@dataclass
class GGUFSpec:
    precision: str
    tensors: list[GGUFTensor]

    @property
    def quant(self) -> Quant:
        return QUANTS[self.precision]

    @property
    def params(self) -> int:
        return sum(t.numel for t in self.tensors)

    def data_bytes(self, alignment: int = gguf.GGUF_DEFAULT_ALIGNMENT) -> int:
        return sum(gguf.GGUFWriter.ggml_pad(t.nbytes, alignment) for t in self.tensors)

    def types(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for t in self.tensors:
            counts[t.qtype.name] = counts.get(t.qtype.name, 0) + 1
        return counts


def ggml_shape(shape: tuple[int, ...], name: str) -> tuple[int, ...]:
    """The shape llama-quantize writes back: ggml counts dims up to the last ne != 1, so torch's leading
    size-1 dims drop; lcpp.patch restores 3 dims for Wan's .modulation (and FLF2V's emb_pos)."""
    ne = list(reversed(shape))
    n_dims = max([i + 1 for i, n in enumerate(ne) if n != 1], default=1)
    if (".modulation" in name and len(ne) > 2 and ne[2] == 1) or name == "img_emb.emb_pos":
        n_dims = 3
    return tuple(reversed(ne[:n_dims]))


def tensor_type(name: str, shape: tuple[int, ...], quant: Quant) -> Q:
    """The GGML type of one tensor of the final file (shape in torch order)."""
    if len(shape) > MAX_QUANTIZE_DIMS:
        return Q.F32  # fix_5d_tensors.py adds them back as F32
    quantize = (name.endswith("weight") and len(ggml_shape(shape, name)) == 2
                and not any(k in name for k in WAN_KEEP) and "_norm.weight" not in name)
    if not quantize:
        return Q.F16  # convert.py's type for an fp16 source, untouched by llama-quantize
    qtype = quant.default
    if any(v in name for v in V_NAMES):
        qtype = quant.v
    elif any(f in name for f in FFN_DOWN_NAMES):
        qtype = quant.ffn_down
    if shape[-1] % QK_K != 0:
        qtype = Q.F16
    return qtype


def gguf_spec(fp16: FileSpec, precision: str) -> GGUFSpec:
    """The GGUF layout of `precision` from the fp16 spec (every parameter of the loader's model)."""
    if precision not in QUANTS:
        raise ValueError(f"unknown GGUF precision {precision!r} ({', '.join(QUANTS)})")
    quant = QUANTS[precision]
    tensors = []
    for t in fp16.tensors:
        qtype = tensor_type(t.name, t.shape, quant)
        shape = t.shape if qtype == Q.F32 and len(t.shape) > MAX_QUANTIZE_DIMS else ggml_shape(t.shape, t.name)
        tensors.append(GGUFTensor(t.name, shape, qtype, t.shape))
    return GGUFSpec(precision, tensors)
