"""--selftest: every spec built on meta, run through the pinned loaders, totals checked; then
broken specs, to show the checks fail. No file is written; no GPU is needed."""
from __future__ import annotations

import dataclasses
import sys
import time

import torch

import numpy as np

from . import gguf_writer, pose
from .catalog import ONNX_ROLES, POSE_PARAMS, STD, Catalog, Entry
from .comfy_env import ComfyEnv, quiet
from .diffusion import LoaderExpectationError
from .gguf_layout import GGUFSpec
from .tensors import FileSpec, file_size


def run_selftest(env: ComfyEnv, entries: list[Entry]) -> int:
    catalog = Catalog(env, entries, root=None)
    failures = 0
    try:
        for e in entries:
            if e.role in ONNX_ROLES:
                continue
            failures += _step(f"{e.relpath}", lambda e=e: _spec_line(catalog, e))
        failures += _step("pose stand-ins", _pose_line)
        failures += _step("GGUF blocks dequantize (wrapper's code) to finite N(0, 0.01)-like values", lambda: _blocks_line(env))
        for name, broken in _mutations(catalog):
            failures += _step(f"detects {name}", lambda broken=broken: _must_fail(broken))
    finally:
        catalog.close()
    print("selftest " + ("passed" if failures == 0 else f"FAILED ({failures})"))
    return 1 if failures else 0


def _step(name: str, run) -> int:
    t0 = time.time()
    try:
        line = run()
    except Exception as err:
        print(f"  FAIL {name}: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    print(f"  ok   {name} ({time.time() - t0:.1f} s) {line}")
    return 0


def _spec_line(catalog: Catalog, e: Entry) -> str:
    spec = catalog.spec(e)
    facts = catalog.check_spec(e)
    if isinstance(spec, GGUFSpec):
        return f"{len(spec.tensors)} tensors, {spec.params / 1e9:.4f} G params, {facts['file_gb']} GB; loader: {facts}"
    return (f"{len(spec.tensors)} tensors, {spec.params / 1e9:.4f} G params, "
            f"{file_size(spec) / 2**30:.3f} GiB; loader: {facts}")


def _blocks_line(env: ComfyEnv) -> str:
    utils = env.import_wrapper("gguf.gguf_utils")
    stds = {}
    for qtype in (gguf_writer.Q.Q4_K, gguf_writer.Q.Q5_K, gguf_writer.Q.Q6_K):
        pool = gguf_writer.block_pool(qtype, STD, 4096, np.random.default_rng(0))
        values = utils.dequantize_gguf_tensor(utils.GGUFParameter(torch.from_numpy(pool).reshape(16, -1), quant_type=qtype))
        std = float(values.float().std())
        if not bool(torch.isfinite(values).all()) or abs(std - STD) > 0.1 * STD:
            raise AssertionError(f"{qtype.name} blocks dequantize to std {std} (finite: {bool(torch.isfinite(values).all())})")
        stds[qtype.name] = round(std, 5)
    return f"std {stds}"


def _pose_line() -> str:
    counts = {}
    for name, cls in (("yolo", pose.YoloStandIn), ("vitpose", pose.ViTPoseStandIn)):
        with torch.device("meta"):
            real = pose.params(cls("real"))
        target, tolerance = POSE_PARAMS[name]
        if abs(real - target) > tolerance * target:
            raise AssertionError(f"real {name} stand-in has {real} parameters, want {target} +-{tolerance:.0%}")
        counts[name] = real
    with torch.no_grad():
        detections = pose.YoloStandIn("tiny")(torch.rand(2, *pose.YOLO_INPUT))
        heatmaps = pose.ViTPoseStandIn("tiny")(torch.randn(2, *pose.VITPOSE_INPUT))
    if detections.shape != (2, pose.YOLO_DETECTIONS, 6) or heatmaps.shape != (2, pose.VITPOSE_KEYPOINTS, *pose.HEATMAP):
        raise AssertionError(f"tiny stand-ins give {tuple(detections.shape)} and {tuple(heatmaps.shape)}")
    return f"real yolo {counts['yolo'] / 1e6:.1f} M, real vitpose {counts['vitpose'] / 1e6:.1f} M params; outputs ok"


def _mutations(catalog: Catalog):
    """Specs with one thing wrong, each of which a loader check must reject."""
    def first(role: str, pick=lambda e: True) -> Entry:
        return next(e for e in catalog.entries if e.role == role and pick(e))

    fp8 = first("diffusion_model", lambda e: e.precisions == ("fp8",))
    lora = first("distill_lora")
    t5 = first("text_encoder")

    def without(e: Entry, drop) -> FileSpec:
        spec = catalog.spec(e)
        return dataclasses.replace(spec, tensors=[t for t in spec.tensors if not drop(t.name)])

    def changed(e: Entry, change) -> FileSpec:
        spec = catalog.spec(e)
        return dataclasses.replace(spec, tensors=[change(t) for t in spec.tensors])

    def check(e: Entry, spec: FileSpec):
        return lambda: catalog.check_with(e, lambda _path: spec.meta_state_dict())

    yield "a diffusion file missing one parameter", check(fp8, without(fp8, lambda n: n == "blocks.39.modulation"))
    yield "a diffusion file without the SteadyDancer modules", check(
        fp8, without(fp8, lambda n: n.startswith("condition_embedding_align.")))
    yield "fp8 weights without their scale_weight", check(fp8, without(fp8, lambda n: n.endswith(".scale_weight")))
    yield "LoRA keys in a naming the loader does not match", check(lora, changed(
        lora, lambda t: dataclasses.replace(t, name=t.name.replace(".self_attn.", ".self_attention."))))
    down = "diffusion_model.blocks.0.self_attn.q.lora_down.weight"
    yield "a LoRA pair that does not fit its weight", check(lora, changed(
        lora, lambda t: dataclasses.replace(t, shape=(t.shape[0], 1)) if t.name == down else t))
    yield "a text encoder missing a block", check(t5, without(t5, lambda n: n.startswith("blocks.23.")))

    gguf = next((e for e in catalog.entries if e.is_gguf), None)
    if gguf is None:
        return
    spec = catalog.spec(gguf)

    def gguf_variant(change) -> GGUFSpec:
        return dataclasses.replace(spec, tensors=[c for t in spec.tensors if (c := change(t)) is not None])

    def check_gguf(broken: GGUFSpec):
        return lambda: catalog.check_gguf_spec(gguf, broken)

    yield "a GGUF missing one tensor", check_gguf(gguf_variant(lambda t: None if t.name == "blocks.7.ffn.0.bias" else t))
    yield "a GGUF without its 5-D tensors (convert.py's output before fix_5d_tensors.py)", check_gguf(
        gguf_variant(lambda t: None if len(t.shape) > 4 else t))
    yield "a GGUF whose modulation lost a dim (llama-quantize without lcpp.patch's Wan fix)", check_gguf(gguf_variant(
        lambda t: dataclasses.replace(t, shape=t.shape[1:]) if t.name.endswith(".modulation") else t))
    yield "a GGUF linear of the wrong shape", check_gguf(gguf_variant(
        lambda t: dataclasses.replace(t, shape=(t.shape[0], t.shape[1] + 256)) if t.name == "blocks.3.ffn.0.weight" else t))


def _must_fail(run) -> str:
    try:
        with quiet():  # the loaders log every key they skip; the verdict is what counts here
            run()
    except LoaderExpectationError as err:
        return f"rejected: {type(err).__name__}: {str(err)[:140]}"
    raise AssertionError("the check accepted a broken spec")
