"""What a synthetic weight file holds: tensor specs, derived from the loaders, never from a table."""
from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass, field

import torch

# safetensors' dtype names (the header's "dtype" field).
SAFETENSORS_DTYPES: dict[torch.dtype, str] = {
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.float8_e4m3fn: "F8_E4M3",
}
TORCH_DTYPES: dict[str, torch.dtype] = {name: dtype for dtype, name in SAFETENSORS_DTYPES.items()}


@dataclass(frozen=True)
class Fill:
    """How a tensor's values are made: random normal * std, or one constant (scales, alphas, markers)."""

    std: float | None = None
    constant: float | None = None

    @staticmethod
    def random(std: float) -> Fill:
        return Fill(std=std)

    @staticmethod
    def const(value: float) -> Fill:
        return Fill(constant=value)


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    fill: Fill

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize


@dataclass
class FileSpec:
    """One safetensors file: its tensors in write order plus the header's __metadata__."""

    tensors: list[TensorSpec]
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def data_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    @property
    def params(self) -> int:
        # Markers and scales are bookkeeping, not parameters: count only what the model holds.
        return sum(t.numel for t in self.tensors if t.fill.constant is None)

    def meta_state_dict(self) -> dict[str, torch.Tensor]:
        """The file as a loader would see it, without data: meta tensors, small constants real."""
        return {t.name: spec_tensor(t) for t in sorted(self.tensors, key=lambda t: t.name)}

    def empty_state_dict(self) -> dict[str, torch.Tensor]:
        """Real (uninitialised) CPU tensors, for loaders that copy values (strict load_state_dict)."""
        return {t.name: torch.empty(t.shape, dtype=t.dtype) for t in sorted(self.tensors, key=lambda t: t.name)}


def spec_tensor(t: TensorSpec) -> torch.Tensor:
    # Constants (alphas read with .item(), fp8 scales moved to the GPU) must be real; the rest
    # stays on meta so a 30 GB model costs nothing to describe.
    if t.fill.constant is not None:
        return torch.full(t.shape, t.fill.constant, dtype=torch.float32).to(t.dtype)
    return torch.empty(t.shape, dtype=t.dtype, device="meta")


def header_size(spec: FileSpec) -> int:
    """Bytes of the safetensors header (8-byte length + padded JSON), as the writer lays it out."""
    from .writer import encode_header

    return 8 + len(encode_header(spec))


def file_size(spec: FileSpec) -> int:
    return header_size(spec) + spec.data_bytes


def header_state_dict(path: str) -> dict[str, torch.Tensor]:
    """A safetensors file as a loader sees it, read from its header: meta tensors of the file's
    shapes and dtypes, with scalars (alphas, fp8 scales, markers) read for real. The header is
    parsed here rather than with safe_open, which maps the whole file (32 GB for fp16) into
    memory; the layout is validated as safetensors does: offsets contiguous from 0, each tensor's
    bytes matching its shape and dtype, the data ending at the end of the file."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        header.pop("__metadata__", None)
        start, size = 8 + length, os.fstat(f.fileno()).st_size
        end = 0
        for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
            if info["dtype"] not in TORCH_DTYPES:
                raise ValueError(f"{path}: {name} has dtype {info['dtype']}, which no synthetic spec writes")
            begin, stop = info["data_offsets"]
            nbytes = math.prod(info["shape"]) * TORCH_DTYPES[info["dtype"]].itemsize
            if begin != end or stop - begin != nbytes:
                raise ValueError(f"{path}: {name} occupies bytes {begin}..{stop}, expected {end}..{end + nbytes}")
            end = stop
        if start + end != size:
            raise ValueError(f"{path}: {size} bytes, the header describes {start + end} (truncated or padded)")
        sd: dict[str, torch.Tensor] = {}
        for name in sorted(header):  # safe_open's key order, which the loaders' first-key checks see
            info = header[name]
            shape, dtype = tuple(info["shape"]), TORCH_DTYPES[info["dtype"]]
            if math.prod(shape) == 1:
                f.seek(start + info["data_offsets"][0])
                sd[name] = torch.frombuffer(bytearray(f.read(dtype.itemsize)), dtype=dtype).reshape(shape)
            elif math.prod(shape) == 0:
                sd[name] = torch.empty(shape, dtype=dtype)
            else:
                sd[name] = torch.empty(shape, dtype=dtype, device="meta")
    return sd
