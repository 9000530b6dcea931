"""What a synthetic weight file holds: tensor specs, derived from the loaders, never from a table."""
from __future__ import annotations

import math
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
    def random(std: float) -> "Fill":
        return Fill(std=std)

    @staticmethod
    def const(value: float) -> "Fill":
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
    shapes and dtypes, with scalars (alphas, fp8 scales, markers) read for real. safe_open also
    checks the header against the file size, so a truncated file fails here."""
    from safetensors import safe_open

    sd: dict[str, torch.Tensor] = {}
    with safe_open(path, framework="pt") as f:
        for name in f.keys():
            sliced = f.get_slice(name)
            shape, dtype = tuple(sliced.get_shape()), sliced.get_dtype()
            if dtype not in TORCH_DTYPES:
                raise ValueError(f"{path}: {name} has dtype {dtype}, which no synthetic spec writes")
            small = math.prod(shape) <= 1
            sd[name] = f.get_tensor(name) if small else torch.empty(shape, dtype=TORCH_DTYPES[dtype], device="meta")
    return sd
