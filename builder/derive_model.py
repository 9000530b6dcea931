#!/usr/bin/env python3
"""Makes the model files workflows/models.json marks with `derive` (instead of a download `source`).

Recipe `merge-lora-fp8-scaled` (the turbo-fp8 variant's model, as TurboDiffusion ships its distillation:
merged into the weights, so fp8 matrix multiplies need no LoRA):
  * every LoRA patch is added to its base weight in float32: W + strength * alpha / rank * (up @ down),
    and `.diff` / `.diff_b` patches (whole weight / bias deltas) likewise; a LoRA key this script does
    not know, or one aimed at a weight the base lacks, stops it (a wrong merge must never pass quietly);
  * the transformer blocks' linear weights (2-D `blocks.N.*.weight`) are quantized once to float8 e4m3fn
    with a fresh per-tensor scale, `scale_weight` = max|W| / 448 (float32, 0-D), everything else is
    stored bf16, and the `scaled_fp8` marker is set: the layout of Kijai's fp8_e4m3fn_scaled files,
    which WanVideoModelLoader runs with quantization `fp8_e4m3fn_scaled_fast`;
  * the base may be fp16/bf16/fp32 (quantized once: the better source) or itself scaled fp8 (dequantized
    with its scales first, then quantized again with new ones);
  * every quantized weight is read back and compared with its float32 merge: a relative error over
    MAX_RELATIVE_ERROR (float8 e4m3fn rounds to 3 mantissa bits: about 2-3 % is normal) fails the run.

Streams one tensor at a time (a 16 GB base needs ~1 GB of memory), writes <out>.partial and renames it
when complete, and prints the sha256 of what it wrote. Needs NumPy and ml_dtypes (both in the image's
lock). Two ways to run it:
  derive_model.py --manifest workflows/models.json --dest /models --ids ID[,ID...]   (downloads the inputs)
      [--precision P --variants LIST]   (the image build's slot: only what P and LIST select;
      a derived file is made only when LIST names its variant: "all" does not, it is a large opt-in)
  derive_model.py --base BASE.safetensors --lora LORA.safetensors --out OUT.safetensors [--strength S]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import mmap
import os
import re
import shutil
import struct
import sys
from pathlib import Path

import ml_dtypes
import numpy as np

FP8_MAX = 448.0  # largest finite float8 e4m3fn
MAX_RELATIVE_ERROR = 0.06
SCALED_FP8_MARKER = "scaled_fp8"
BLOCK_LINEAR = re.compile(r"^blocks\.\d+\..+\.weight$")
LORA_PREFIX = "diffusion_model."
DTYPES = {
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "F16": np.dtype(np.float16),
    "F32": np.dtype(np.float32),
}
NAMES = {v: k for k, v in DTYPES.items()}


class DeriveError(Exception):
    """The inputs do not make the file the recipe promises; the message says which tensor and why."""


class SafeTensors:
    """A safetensors file read lazily through mmap: the header, then one tensor at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("rb")
        (size,) = struct.unpack("<Q", self._file.read(8))
        header = json.loads(self._file.read(size))
        header.pop("__metadata__", None)
        self.entries = header
        self._data_start = 8 + size
        self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)

    def keys(self) -> list[str]:
        return list(self.entries)

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self.entries[key]["shape"])

    def get(self, key: str) -> np.ndarray:
        e = self.entries[key]
        if e["dtype"] not in DTYPES:
            raise DeriveError(f"{self.path.name}: {key} has dtype {e['dtype']}, which this script does not read")
        start, end = e["data_offsets"]
        raw = self._map[self._data_start + start:self._data_start + end]
        return np.frombuffer(raw, dtype=DTYPES[e["dtype"]]).reshape(e["shape"])

    def close(self) -> None:
        self._map.close()
        self._file.close()


def lora_patches(lora: SafeTensors, strength: float) -> dict[str, dict[str, str | float]]:
    """Target weight key -> the LoRA keys of its patch ('down', 'up', 'alpha' and/or 'diff') and its 'strength';
    bias key -> {'diff', 'strength'}."""
    patches: dict[str, dict] = {}
    for key in lora.keys():
        if not key.startswith(LORA_PREFIX):
            raise DeriveError(f"LoRA key {key} lacks the '{LORA_PREFIX}' prefix this recipe expects")
        name = key[len(LORA_PREFIX):]
        for suffix, target, part in ((".lora_down.weight", ".weight", "down"), (".lora_up.weight", ".weight", "up"),
                                     (".alpha", ".weight", "alpha"), (".diff_b", ".bias", "diff"), (".diff", ".weight", "diff")):
            if name.endswith(suffix):
                patches.setdefault(name[: -len(suffix)] + target, {})[part] = key
                break
        else:
            raise DeriveError(f"LoRA key {key}: unknown kind (expected lora_down/lora_up/alpha/diff/diff_b)")
    for target, p in patches.items():
        if ("down" in p) != ("up" in p):
            raise DeriveError(f"LoRA for {target} has only one of lora_down/lora_up")
        if "alpha" in p and "down" not in p:
            raise DeriveError(f"LoRA for {target} has an alpha but no lora_down/lora_up")
        p["strength"] = strength
    return patches


def patched(base: SafeTensors, key: str, patch: dict | None, lora: SafeTensors) -> np.ndarray:
    """The base tensor (dequantized with its scale_weight when scaled fp8) plus its patch, float32."""
    w = base.get(key).astype(np.float32)
    scale_key = key.removesuffix(".weight") + ".scale_weight"
    if key.endswith(".weight") and scale_key in base.entries:
        w = w * base.get(scale_key).astype(np.float32).reshape(())
    if patch is None:
        return w
    if "down" in patch:
        down = lora.get(patch["down"]).astype(np.float32)
        up = lora.get(patch["up"]).astype(np.float32)
        rank = down.shape[0]
        alpha = float(lora.get(patch["alpha"]).astype(np.float32).reshape(())) if "alpha" in patch else float(rank)
        delta = up.reshape(up.shape[0], rank) @ down.reshape(rank, -1)
        if delta.size != w.size:
            raise DeriveError(f"LoRA for {key}: up @ down is {delta.shape}, the weight is {w.shape}")
        delta = delta.reshape(w.shape)
        w = w + np.float32(patch["strength"] * alpha / rank) * delta
    if "diff" in patch:
        diff = lora.get(patch["diff"]).astype(np.float32)
        if diff.shape != w.shape:
            raise DeriveError(f"LoRA diff for {key} is {diff.shape}, the tensor is {w.shape}")
        w = w + np.float32(patch["strength"]) * diff
    return w


def quantize(w: np.ndarray, key: str) -> tuple[np.ndarray, np.ndarray, float]:
    """(float8 e4m3fn weight, 0-D float32 scale, relative error) with weight * scale ~= w, read back to check."""
    peak = float(np.max(np.abs(w)))
    if not np.isfinite(peak):
        raise DeriveError(f"{key}: the merged weight is not finite")
    scale = np.float32(peak / FP8_MAX if peak > 0 else 1.0)
    q = (w / scale).astype(ml_dtypes.float8_e4m3fn)
    back = q.astype(np.float32) * scale
    norm = float(np.linalg.norm(w))
    error = float(np.linalg.norm(back - w)) / norm if norm > 0 else 0.0
    if not error <= MAX_RELATIVE_ERROR:
        raise DeriveError(f"{key}: float8 round trip is off by {error:.3%} (more than {MAX_RELATIVE_ERROR:.0%})")
    return q, np.array(scale, dtype=np.float32), error


def plan(base: SafeTensors, patches: dict) -> list[tuple[str, str]]:
    """(key, how) for every output tensor, in the base's order: 'fp8' quantized weights, 'bf16' the rest."""
    unknown = sorted(k for k in patches if k not in base.entries)
    if unknown:
        raise DeriveError(f"the LoRA patches tensors the base model lacks: {', '.join(unknown[:5])}"
                          f"{' ...' if len(unknown) > 5 else ''} ({len(unknown)})")
    out = []
    for key in base.keys():
        if key == SCALED_FP8_MARKER or key.endswith(".scale_weight"):
            continue  # made anew below
        quantized = BLOCK_LINEAR.match(key) is not None and len(base.shape(key)) == 2
        out.append((key, "fp8" if quantized else "bf16"))
    return out


def merge(base_path: Path, lora_path: Path, out_path: Path, strength: float, log=print) -> dict:
    base, lora = SafeTensors(base_path), SafeTensors(lora_path)
    try:
        patches = lora_patches(lora, strength)
        order = plan(base, patches)
        # Header first: every tensor's dtype and shape are known before any data is computed.
        layout: list[tuple[str, np.dtype, tuple[int, ...]]] = []
        for key, how in order:
            shape = base.shape(key)
            if how == "fp8":
                layout.append((key, DTYPES["F8_E4M3"], shape))
                layout.append((key.removesuffix(".weight") + ".scale_weight", DTYPES["F32"], ()))
            else:
                layout.append((key, DTYPES["BF16"], shape))
        layout.append((SCALED_FP8_MARKER, DTYPES["F8_E4M3"], (0,)))
        header, offset = {}, 0
        for key, dtype, shape in layout:
            size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            header[key] = {"dtype": NAMES[dtype], "shape": list(shape), "data_offsets": [offset, offset + size]}
            offset += size
        header["__metadata__"] = {
            "format": "pt",
            "derived": json.dumps({"recipe": "merge-lora-fp8-scaled", "base": base_path.name, "lora": lora_path.name,
                                   "strength": strength}),
        }
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)
        partial = out_path.with_name(out_path.name + ".partial")
        out_path.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        worst = 0.0
        quantized = 0
        try:
            with partial.open("wb") as f:
                def write(data: bytes) -> None:
                    f.write(data)
                    digest.update(data)

                write(struct.pack("<Q", len(raw)) + raw)
                for i, (key, how) in enumerate(order):
                    w = patched(base, key, patches.get(key), lora)
                    if how == "fp8":
                        q, scale, error = quantize(w, key)
                        write(q.tobytes())
                        write(scale.tobytes())
                        quantized += 1
                        worst = max(worst, error)
                    else:
                        write(w.astype(ml_dtypes.bfloat16).tobytes())
                    if (i + 1) % 100 == 0:
                        log(f"[derive] {i + 1}/{len(order)} tensors")
            partial.replace(out_path)
        except BaseException:
            partial.unlink(missing_ok=True)  # never leave a half file that looks like progress
            raise
        facts = {"path": str(out_path), "bytes": out_path.stat().st_size, "sha256": digest.hexdigest(),
                 "tensors": len(layout), "quantized": quantized, "patched": len(patches),
                 "worst_relative_error": round(worst, 5)}
        log(f"[derive] {out_path.name}: {json.dumps(facts)}")
        return facts
    finally:
        base.close()
        lora.close()


def selected(entry: dict, precision: str | None, variants: list[str] | None) -> str | None:
    """Why the build's PRECISION/VARIANTS leave this derived entry out; None when they select it."""
    if precision is not None and precision not in entry.get("precisions", []):
        return f"not made for precision {precision!r} (only {', '.join(entry.get('precisions', []))})"
    if variants is not None and not set(variants) & set(entry.get("variants", [])):
        return (f"made only when VARIANTS names {' or '.join(entry.get('variants', []))} "
                "(\"all\" does not: it downloads the fp16 model and adds ~16 GB)")
    return None


def derive_from_manifest(manifest: Path, dest: Path, ids: list[str], token_file: str | None,
                         precision: str | None = None, variants: list[str] | None = None) -> int:
    # The download script sits beside this one; its Downloader checks sizes and hashes and resumes.
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import download_models as dl

    entries = {e["id"]: e for e in dl.load_manifest(manifest)}
    token = dl.read_token(token_file)
    failed = []
    for file_id in ids:
        entry = entries.get(file_id)
        if entry is None or "derive" not in entry:
            raise SystemExit(f"derive_model.py: {file_id} is not a derived entry of {manifest}")
        recipe = entry["derive"]
        if recipe.get("recipe") != "merge-lora-fp8-scaled":
            raise SystemExit(f"derive_model.py: {file_id}: unknown recipe {recipe.get('recipe')!r}")
        skipped = selected(entry, precision, variants)
        if skipped:
            print(f"[derive] {file_id}: {skipped}")
            continue
        out = dest / dl.safe_relative(entry["folder"], "folder") / dl.safe_relative(entry["path"], "path")
        if out.exists():
            print(f"[derive] {file_id}: already present at {out}")
            continue
        scratch = dest / ".derive-inputs" / file_id
        try:
            downloader = dl.Downloader(dl.default_base_url(), scratch, token, retries=6, backoff_s=2.0, timeout_s=120.0)
            base_path, lora_path = (downloader.fetch(dl.model_file(entries[recipe[k]])) for k in ("base", "lora"))
            merge(base_path, lora_path, out, float(recipe.get("strength", 1.0)))
        except (DeriveError, dl.DownloadError, OSError) as err:
            print(f"[derive] {file_id} FAILED: {err}", file=sys.stderr)
            failed.append(file_id)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            if scratch.parent.exists() and not any(scratch.parent.iterdir()):
                scratch.parent.rmdir()
    if failed:
        print(f"[derive] failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", type=Path)
    p.add_argument("--dest", type=Path)
    p.add_argument("--ids")
    p.add_argument("--token-file")
    p.add_argument("--precision", help="the build's PRECISION: derive only entries made for it")
    p.add_argument("--variants", help="the build's VARIANTS (a comma list; 'all' names none)")
    p.add_argument("--base", type=Path)
    p.add_argument("--lora", type=Path)
    p.add_argument("--out", type=Path)
    p.add_argument("--strength", type=float, default=1.0)
    args = p.parse_args(argv)
    if args.base or args.lora or args.out:
        if not (args.base and args.lora and args.out):
            p.error("--base, --lora and --out go together")
        try:
            merge(args.base, args.lora, args.out, args.strength)
        except DeriveError as err:
            print(f"[derive] FAILED: {err}", file=sys.stderr)
            return 1
        return 0
    if not (args.manifest and args.dest and args.ids):
        p.error("give --manifest, --dest and --ids (or --base, --lora and --out)")
    variants = None if args.variants is None else [v for v in args.variants.split(",") if v and v != "all"]
    return derive_from_manifest(args.manifest, args.dest, args.ids.split(","), args.token_file, args.precision, variants)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
