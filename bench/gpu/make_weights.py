#!/usr/bin/env python3
"""Writes synthetic (random-valued) weights for every workflows/models.json file, at its exact
path under a models root, with the keys, shapes and dtypes the pinned loaders expect.

  python bench/gpu/make_weights.py --comfy-dir ComfyUI --root /models --precision fp8,fp16 --check
  python bench/gpu/make_weights.py --comfy-dir ComfyUI --root /models --precision gguf-q5_k_m --check
  python bench/gpu/make_weights.py --comfy-dir ComfyUI --root /models --check-only
  python bench/gpu/make_weights.py --comfy-dir ComfyUI --selftest

Specs come from the pinned loaders' own classes (built on the meta device), and --check loads
each file through the loaders' own code. See bench/gpu/README.md, "Synthetic weights".
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time

import torch
from synthetic import pose
from synthetic.catalog import DIFFUSION_PRECISIONS, ONNX_ROLES, STD, Catalog, Entry, describe, read_models_json, select
from synthetic.comfy_env import load_comfy
from synthetic.gguf_layout import GGUFSpec
from synthetic.gguf_writer import GGUFSource, write_gguf
from synthetic.writer import RandomSource, write_safetensors

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Every variant the repository's manifest names (a variant added there is written without touching this file).
with open(os.path.join(REPO, "workflows", "models.json")) as _f:
    VARIANTS = list(dict.fromkeys(v for e in json.load(_f)["files"] for v in e["variants"]))


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--comfy-dir", required=True, help="pinned ComfyUI tree with the custom node packs inside")
    p.add_argument("--root", help="models root: files go to <root>/<folder>/<path>")
    p.add_argument("--models-json", default=os.path.join(REPO, "workflows", "models.json"))
    p.add_argument("--precision", default="fp8",
                   help=f"comma list of {', '.join(DIFFUSION_PRECISIONS)} (which diffusion files; the rest are shared)")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of {', '.join(VARIANTS)}")
    p.add_argument("--only", help="comma list of models.json ids, e.g. wan21-vae,clip-vision-h")
    p.add_argument("--pose-size", choices=["tiny", "real"], default="real",
                   help="pose ONNX stand-ins: tiny (a few layers) or real (yolov10m/ViTPose-H sized)")
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto", help="where random values are drawn")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--check", action="store_true", help="after writing, load every file with the pinned loaders")
    p.add_argument("--check-only", action="store_true", help="check the files under --root, write nothing")
    p.add_argument("--zeros", action="store_true",
                   help="testing aid: sparse all-zero safetensors files (true headers and sizes, no data written)")
    p.add_argument("--manifest", help="JSON record of what was written/checked (default <root>/synthetic-weights.json)")
    p.add_argument("--selftest", action="store_true",
                   help="build every spec on meta, run the loaders on it, check totals")
    args = p.parse_args(argv)
    if not args.selftest and not args.root:
        p.error("--root is required unless --selftest")
    args.precisions = args.precision.split(",")
    args.variant_list = args.variants.split(",")
    for name, values, allowed in (("--precision", args.precisions, list(DIFFUSION_PRECISIONS)),
                                  ("--variants", args.variant_list, VARIANTS)):
        if not values or set(values) - set(allowed):
            p.error(f"{name} takes a comma list of {', '.join(allowed)}")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    started = time.time()
    env = load_comfy(args.comfy_dir)
    entries = read_models_json(args.models_json)
    if args.selftest:
        from synthetic.selftest import run_selftest

        return run_selftest(env, entries)
    chosen = select(entries, args.precisions, args.variant_list, args.only.split(",") if args.only else None)
    catalog = Catalog(env, entries, os.path.abspath(args.root))
    try:
        records = [] if args.check_only else write_all(catalog, chosen, args)
        if args.check or args.check_only:
            records = check_all(catalog, chosen, {r["id"]: r for r in records})
    finally:
        catalog.close()
    manifest = {
        "generator": "bench/gpu/make_weights.py", "created": datetime.datetime.now(datetime.UTC).isoformat(),
        "root": os.path.abspath(args.root), "comfy_dir": os.path.abspath(args.comfy_dir),
        "models_json": os.path.abspath(args.models_json), "precisions": args.precisions,
        "variants": args.variant_list, "pose_size": args.pose_size, "zeros": args.zeros, "torch": torch.__version__,
        "total_bytes": sum(r["bytes"] for r in records), "seconds": round(time.time() - started, 1), "files": records,
    }
    path = args.manifest or os.path.join(args.root, "synthetic-weights.json")
    with open(path, "w") as f:
        json.dump(manifest, f, indent=2)
    failed = [r["id"] for r in records if r.get("check", {}).get("ok") is False]
    print(f"{len(records)} files, {manifest['total_bytes'] / 2**30:.2f} GiB, {manifest['seconds']} s; manifest {path}")
    if failed:
        print(f"CHECK FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def write_all(catalog: Catalog, chosen: list[Entry], args: argparse.Namespace) -> list[dict]:
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
                          else "cpu")
    source = None if args.zeros else RandomSource(device, args.seed)
    quantized = None if source is None else GGUFSource(source, STD, args.seed)
    print(f"writing {len(chosen)} files under {args.root} (values: {'zeros' if args.zeros else device.type})")
    records = []
    for e in chosen:
        if e.role == "pose_estimator_data":
            continue  # written by its pose_estimator entry (ONNX external data)
        t0 = time.time()
        if e.role in ONNX_ROLES:
            written = write_pose(catalog, e, args.pose_size)
        else:
            spec = catalog.spec(e)
            if isinstance(spec, GGUFSpec):
                size = write_gguf(e.file(args.root), spec, quantized)
            else:
                size = write_safetensors(e.file(args.root), spec, source)
            written = [{"id": e.id, "role": e.role, "path": e.relpath, "bytes": size, **describe(spec)}]
        seconds = time.time() - t0
        for r in written:
            r["seconds"] = round(seconds, 2)
            print(f"  {r['path']}: {r['bytes'] / 2**20:,.1f} MiB, {r['params'] / 1e6:,.1f} M params, "
                  f"{seconds:.1f} s ({r['bytes'] / 2**20 / max(seconds, 1e-9):,.0f} MiB/s)")
        records += written
    return records


def write_pose(catalog: Catalog, e: Entry, size: str) -> list[dict]:
    root = catalog.root
    if e.role == "person_detector":
        params = pose.export_yolo(e.file(root), size)
        return [{"id": e.id, "role": e.role, "path": e.relpath, "bytes": os.path.getsize(e.file(root)),
                 "params": params, "pose_size": size}]
    (data,) = catalog.by_role("pose_estimator_data")
    params = pose.export_vitpose(e.file(root), data.file(root), size)
    return [{"id": x.id, "role": x.role, "path": x.relpath, "bytes": os.path.getsize(x.file(root)),
             "params": params if x is e else 0, "pose_size": size} for x in (e, data)]


def check_all(catalog: Catalog, chosen: list[Entry], written: dict[str, dict]) -> list[dict]:
    print("checking with the pinned loaders")
    records, pose_result = [], None
    for e in chosen:
        path = e.file(catalog.root)
        record = written.get(e.id) or {"id": e.id, "role": e.role, "path": e.relpath,
                                       "bytes": os.path.getsize(path) if os.path.isfile(path) else 0}
        t0 = time.time()
        try:
            if e.role in ONNX_ROLES:
                pose_result = pose_result or catalog.check_file(e)  # one check covers the pose pair
                facts = pose_result
            else:
                facts = catalog.check_file(e)
            record["check"] = {"ok": True, **facts}
            print(f"  PASS {e.relpath} ({time.time() - t0:.1f} s) {json.dumps(facts)}")
        except Exception as err:  # a pin bump can break a loader anywhere: report it per file
            record["check"] = {"ok": False, "error": f"{type(err).__name__}: {err}"}
            print(f"  FAIL {e.relpath}: {type(err).__name__}: {err}", file=sys.stderr)
        records.append(record)
    return records


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
