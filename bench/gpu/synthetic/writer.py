"""Streams a FileSpec to a safetensors file without holding the file in memory.

The format: 8-byte little-endian header length, a JSON header (padded with spaces to 8 bytes)
mapping each name to dtype/shape/data_offsets, then the tensors' bytes back to back. Tensors go
in order of decreasing element size so every tensor starts aligned to its element size, as
safetensors' own save_file arranges them.
"""
from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import torch

from .tensors import SAFETENSORS_DTYPES, FileSpec, TensorSpec

CHUNK_BYTES = 64 << 20
POOL_ELEMENTS = 16 << 20


def layout(spec: FileSpec) -> list[TensorSpec]:
    return sorted(spec.tensors, key=lambda t: (-t.dtype.itemsize, t.name))


def encode_header(spec: FileSpec) -> bytes:
    header: dict[str, object] = {"__metadata__": dict(spec.metadata)} if spec.metadata else {}
    offset = 0
    for t in layout(spec):
        header[t.name] = {
            "dtype": SAFETENSORS_DTYPES[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + t.nbytes],
        }
        offset += t.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return raw


class RandomSource:
    """Random values of a tensor's dtype, as CPU byte chunks of at most CHUNK_BYTES.

    On CUDA every chunk is fresh torch.randn (an H200 makes them far faster than a disk takes
    them). On the CPU, torch.randn for 30 GB would take minutes, so chunks are windows at random
    offsets into a pool drawn once per (dtype, std): values stay random-looking and finite,
    which is all a speed benchmark needs.
    """

    def __init__(self, device: torch.device, seed: int) -> None:
        self.device = device
        self._generator = torch.Generator(device=device).manual_seed(seed)
        self._pick = torch.Generator().manual_seed(seed + 1)
        self._pools: dict[tuple[torch.dtype, float], torch.Tensor] = {}

    def chunks(self, t: TensorSpec) -> Iterator[torch.Tensor]:
        if t.numel == 0:
            return
        if t.fill.constant is not None:
            yield torch.full(t.shape, t.fill.constant, dtype=torch.float32).to(t.dtype).reshape(-1).view(torch.uint8)
            return
        assert t.fill.std is not None
        per_chunk = max(1, CHUNK_BYTES // t.dtype.itemsize)
        if self.device.type != "cuda":
            per_chunk = min(per_chunk, POOL_ELEMENTS // 2)  # a window must fit in the pool
        done = 0
        while done < t.numel:
            n = min(per_chunk, t.numel - done)
            yield self._cuda_chunk(t, n) if self.device.type == "cuda" else self._pool_chunk(t, n)
            done += n

    def _cuda_chunk(self, t: TensorSpec, n: int) -> torch.Tensor:
        values = torch.randn(n, device=self.device, generator=self._generator).mul_(t.fill.std)
        return values.to(t.dtype).view(torch.uint8).cpu()

    def _pool_chunk(self, t: TensorSpec, n: int) -> torch.Tensor:
        key = (t.dtype, float(t.fill.std))
        pool = self._pools.get(key)
        if pool is None:
            pool = (torch.randn(POOL_ELEMENTS, generator=self._generator) * t.fill.std).to(t.dtype)
            self._pools[key] = pool
        start = int(torch.randint(0, POOL_ELEMENTS - n + 1, (1,), generator=self._pick))
        return pool[start:start + n].view(torch.uint8)


def write_safetensors(path: str, spec: FileSpec, source: RandomSource | None) -> int:
    """Writes spec to path (via path + ".partial", renamed when complete); returns the file size.

    source None writes a sparse all-zero file: the same header and size, no data written. It
    exists to test the layout and the loader checks without the disk time.
    """
    header = encode_header(spec)
    total = 8 + len(header) + spec.data_bytes
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    partial = path + ".partial"
    try:
        with open(partial, "wb") as f:
            f.write(struct.pack("<Q", len(header)))
            f.write(header)
            if source is None:
                f.truncate(total)
            else:
                _write_data(f, spec, source)
        written = os.path.getsize(partial)
        if written != total:
            raise RuntimeError(f"{path}: wrote {written} bytes, expected {total}")
        os.replace(partial, path)
    except BaseException:
        if os.path.exists(partial):
            os.remove(partial)
        raise
    return total


def _write_data(f, spec: FileSpec, source: RandomSource) -> None:
    # One writer thread overlaps the disk with making the next chunk; two chunks in flight at most.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending: list[Future] = []
        for t in layout(spec):
            for chunk in source.chunks(t):
                if len(pending) >= 2:
                    pending.pop(0).result()
                pending.append(pool.submit(f.write, memoryview(chunk.numpy())))
        for fut in pending:
            fut.result()
