"""Streams a GGUFSpec to a .gguf file: gguf's own GGUFWriter for the header, key-values and tensor
infos, then the tensors' bytes chunk by chunk (an 11 GB file never sits in memory).

Quantized values are made as valid blocks, not random bytes (random bytes give NaN/inf fp16 scales):
each block's scales are fixed so that it dequantizes to d * (q - offset) with q uniform over the type's
range, d chosen for a standard deviation of STD like the other synthetic weights; the quant bits are
random. Pools of such blocks are drawn once per type; chunks are windows into them, as on the CPU path
of writer.RandomSource.
"""
from __future__ import annotations

import os
from collections.abc import Iterator

import gguf
import numpy as np
import torch
from gguf import GGMLQuantizationType as Q

from .gguf_layout import ARCH, GGUFSpec, GGUFTensor
from .tensors import Fill, TensorSpec
from .writer import CHUNK_BYTES, RandomSource

POOL_BLOCKS = 1 << 18
TORCH_FLOAT = {Q.F16: torch.float16, Q.F32: torch.float32}
NUMPY_FLOAT = {Q.F16: np.float16, Q.F32: np.float32}


def pack_scale_min(scales: list[int], mins: list[int]) -> bytes:
    """llama.cpp's 12-byte packing of eight 6-bit (scale, min) pairs of a Q4_K/Q5_K super-block."""
    out = bytearray(12)
    for j in range(4):
        out[j] = (scales[j] & 63) | ((scales[j + 4] >> 4) << 6)
        out[j + 4] = (mins[j] & 63) | ((mins[j + 4] >> 4) << 6)
        out[j + 8] = (scales[j + 4] & 15) | ((mins[j + 4] & 15) << 4)
    return bytes(out)


def _f16(x: float) -> bytes:
    return np.array([x], dtype="<f2").tobytes()


# Per type: (bytes that are fixed: offset -> bytes), std of (q - offset) for uniform q, offset applied.
def _block_layout(qtype: Q, std: float) -> list[tuple[int, bytes]]:
    if qtype == Q.Q4_K:  # d, dmin, scales[12], qs[128]: w = d*sc*q - dmin*m, sc = 1, m = 8, dmin = d
        d = std / np.std(np.arange(16) - 8)
        return [(0, _f16(d) + _f16(d) + pack_scale_min([1] * 8, [8] * 8))]
    if qtype == Q.Q5_K:  # d, dmin, scales[12], qh[32], qs[128]: q has 5 bits, m = 16
        d = std / np.std(np.arange(32) - 16)
        return [(0, _f16(d) + _f16(d) + pack_scale_min([1] * 8, [16] * 8))]
    if qtype == Q.Q6_K:  # ql[128], qh[64], scales[16] int8, d: w = d * scale * (q - 32)
        d = std / np.std(np.arange(64) - 32)
        return [(192, bytes([1] * 16) + _f16(d))]
    raise ValueError(f"no synthetic block layout for {qtype.name}")


def block_pool(qtype: Q, std: float, blocks: int, rng: np.random.Generator) -> np.ndarray:
    """`blocks` valid blocks of qtype as a flat uint8 array."""
    _, type_size = gguf.GGML_QUANT_SIZES[qtype]
    pool = rng.integers(0, 256, size=(blocks, type_size), dtype=np.uint8)
    for offset, fixed in _block_layout(qtype, std):
        pool[:, offset:offset + len(fixed)] = np.frombuffer(fixed, dtype=np.uint8)
    return pool.reshape(-1)


class GGUFSource:
    """Byte chunks for each tensor: float types from writer.RandomSource, quantized ones from block pools."""

    def __init__(self, floats: RandomSource, std: float, seed: int) -> None:
        self.floats, self.std = floats, std
        self._rng = np.random.default_rng(seed)
        self._pools: dict[Q, np.ndarray] = {}

    def chunks(self, t: GGUFTensor) -> Iterator[np.ndarray]:
        if not t.quantized:
            spec = TensorSpec(t.name, t.shape, TORCH_FLOAT[t.qtype], Fill.random(self.std))
            for chunk in self.floats.chunks(spec):
                yield chunk.numpy()
            return
        pool = self._pools.get(t.qtype)
        if pool is None:
            pool = self._pools[t.qtype] = block_pool(t.qtype, self.std, POOL_BLOCKS, self._rng)
        _, type_size = gguf.GGML_QUANT_SIZES[t.qtype]
        per_chunk = max(1, min(CHUNK_BYTES // type_size, POOL_BLOCKS // 2))
        total = t.nbytes // type_size
        done = 0
        while done < total:
            n = min(per_chunk, total - done)
            start = int(self._rng.integers(0, POOL_BLOCKS - n + 1))
            yield pool[start * type_size:(start + n) * type_size]
            done += n


def _writer(spec: GGUFSpec) -> gguf.GGUFWriter:
    # What tools/fix_5d_tensors.py writes: architecture, quantization version, file type; no other keys.
    w = gguf.GGUFWriter(path=None, arch=ARCH)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_file_type(spec.quant.file_type)
    for t in spec.tensors:
        dtype = np.dtype(np.uint8 if t.quantized else NUMPY_FLOAT[t.qtype])
        w.add_tensor_info(t.name, t.byte_shape, dtype, t.nbytes, raw_dtype=t.qtype)
    return w


def write_gguf(path: str, spec: GGUFSpec, source: GGUFSource | None) -> int:
    """Writes spec to path (via path + ".partial", renamed when complete); returns the file size.
    source None: a sparse all-zero data section (header exact), to test the layout and the checks."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    partial = path + ".partial"
    w = _writer(spec)
    try:
        w.write_header_to_file(path=partial)
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        f = w.fout[0]
        align = w.data_alignment
        f.write(bytes(gguf.GGUFWriter.ggml_pad(f.tell(), align) - f.tell()))
        start = f.tell()
        total = start + spec.data_bytes(align)
        if source is None:
            f.truncate(total)
        else:
            for t in spec.tensors:
                written = 0
                for chunk in source.chunks(t):
                    chunk.tofile(f)
                    written += chunk.nbytes
                if written != t.nbytes:
                    raise RuntimeError(f"{t.name}: wrote {written} bytes, expected {t.nbytes}")
                f.write(bytes(gguf.GGUFWriter.ggml_pad(t.nbytes, align) - t.nbytes))
        w.close()
        size = os.path.getsize(partial)
        if size != total:
            raise RuntimeError(f"{path}: wrote {size} bytes, expected {total}")
        os.replace(partial, path)
    except BaseException:
        w.close()
        if os.path.exists(partial):
            os.remove(partial)
        raise
    return size
