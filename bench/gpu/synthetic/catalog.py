"""workflows/models.json entries -> what to write for each, how to check it, what to expect.

The expectations below are the facts the benchmark's figures rest on (issue 11):
if the pinned loaders build something else from the same keys, the generator stops.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass

from . import diffusion, encoders, gguf_check, gguf_layout, pose
from .comfy_env import ComfyEnv
from .diffusion import DiffusionExpectation, LoaderExpectationError
from .gguf_layout import GGUFSpec
from .gguf_writer import write_gguf
from .tensors import SAFETENSORS_DTYPES, FileSpec, file_size, header_state_dict

# Random weights ~N(0, 0.01): about a trained 5120-wide linear's scale, so activations stay finite.
STD = 0.01

DIFFUSION_PARAMS = 16_397_000_000  # "16.397 G parameters"
DIFFUSION_PARAMS_TOLERANCE = 500_000
SCALED_LINEARS = 40 * 12  # 40 blocks x (self q/k/v/o, cross q/k/v/o/k_img/v_img, ffn.0, ffn.2)


@dataclass(frozen=True)
class LoraFacts:
    base: str  # "i2v" or "t2v": which Wan 2.1 14B the LoRA was trained on
    rank: int
    patches: int  # "Using N LoRA weight patches" on the SteadyDancer model


LORAS = {
    "lightx2v-i2v-lora": LoraFacts("i2v", 64, 480),
    "rcm-t2v-lora": LoraFacts("t2v", 83, 400),
}

# Approximate sizes the reference notes give (GiB); a spec off by more than 0.05 GiB is wrong.
EXPECTED_GIB = {("diffusion_model", "fp8"): 15.5, ("diffusion_model", "fp16"): 30.5, ("text_encoder", None): 10.6}
# GGUF file sizes third parties give for MCG-NJU's files, as Hugging Face shows them (decimal GB, three
# digits: the true size lies within +-0.05 GB). A layout that misses them has the wrong quantization rules.
EXPECTED_GGUF_GB = {"gguf-q4_k_m": 10.9, "gguf-q6_k": 13.7}
DIFFUSION_PRECISIONS = ("fp8", "fp16", *gguf_layout.QUANTS)

# "real" pose stand-ins must be close to yolov10m (~16 M) and ViTPose-H (~630 M) parameters.
POSE_PARAMS = {"yolo": (16_000_000, 0.25), "vitpose": (630_000_000, 0.03)}

SAFETENSORS_ROLES = {"diffusion_model", "distill_lora", "text_encoder", "vae", "clip_vision"}
ONNX_ROLES = {"person_detector", "pose_estimator", "pose_estimator_data"}


class CatalogError(ValueError):
    """models.json asks for something this generator has no spec for."""


@dataclass(frozen=True)
class Entry:
    id: str
    role: str
    folder: str
    path: str
    precisions: tuple[str, ...]
    variants: tuple[str, ...]

    @property
    def relpath(self) -> str:
        return f"{self.folder}/{self.path}"

    def file(self, root: str) -> str:
        return os.path.join(root, self.folder, *self.path.split("/"))

    @property
    def diffusion_precision(self) -> str:
        if len(self.precisions) != 1 or self.precisions[0] not in DIFFUSION_PRECISIONS:
            raise CatalogError(f"{self.id}: a diffusion model entry needs one precision of {', '.join(DIFFUSION_PRECISIONS)}")
        return self.precisions[0]

    @property
    def is_gguf(self) -> bool:
        return self.role == "diffusion_model" and self.diffusion_precision in gguf_layout.QUANTS


def read_models_json(path: str) -> list[Entry]:
    with open(path) as f:
        data = json.load(f)
    entries = [Entry(e["id"], e["role"], e["folder"], e["path"], tuple(e["precisions"]), tuple(e["variants"]))
               for e in data["files"]]
    for e in entries:
        if e.role not in SAFETENSORS_ROLES | ONNX_ROLES:
            raise CatalogError(f"models.json entry {e.id} has role {e.role!r}: no synthetic spec for it; "
                               "add one in bench/gpu/synthetic/catalog.py")
        if e.role == "distill_lora" and e.id not in LORAS:
            raise CatalogError(f"models.json LoRA {e.id}: its base model and rank are unknown; add it to LORAS")
    return entries


def select(entries: list[Entry], precisions: list[str], variants: list[str], only: list[str] | None) -> list[Entry]:
    chosen = [e for e in entries if set(e.precisions) & set(precisions) and set(e.variants) & set(variants)]
    if only:
        unknown = set(only) - {e.id for e in entries}
        if unknown:
            raise CatalogError(f"--only names ids models.json lacks: {sorted(unknown)}")
        chosen = [e for e in chosen if e.id in only]
    # The ViTPose graph and its external data are one export: either both or neither.
    ids = {e.id for e in chosen}
    pair = [e for e in entries if e.role in ("pose_estimator", "pose_estimator_data")]
    if ids & {e.id for e in pair}:
        chosen += [e for e in pair if e.id not in ids]
    return chosen


class Catalog:
    """Builds specs and runs checks for models.json entries. Loaders resolve names through
    ComfyUI's folder_paths: the models root first, then a private folder of empty placeholder
    files (specs are derived by running the loaders, which must find a file by name)."""

    def __init__(self, env: ComfyEnv, entries: list[Entry], root: str | None) -> None:
        self.env, self.entries, self.root = env, entries, root
        self._placeholders = tempfile.mkdtemp(prefix="synthetic-weights-names-")
        for e in entries:
            os.makedirs(os.path.dirname(e.file(self._placeholders)), exist_ok=True)
            open(e.file(self._placeholders), "w").close()
        folders = sorted({e.folder for e in entries})
        env.use_models_root(self._placeholders, folders)
        if root is not None:
            env.use_models_root(root, folders)
        self._specs: dict[str, FileSpec] = {}
        self._lora_base = None

    def close(self) -> None:
        shutil.rmtree(self._placeholders, ignore_errors=True)

    def by_role(self, role: str) -> list[Entry]:
        return [e for e in self.entries if e.role == role]

    # --- specs ---------------------------------------------------------------------------------

    def spec(self, e: Entry) -> FileSpec | GGUFSpec:
        if e.id not in self._specs:
            self._specs[e.id] = self._build_spec(e)
        return self._specs[e.id]

    def _build_spec(self, e: Entry) -> FileSpec | GGUFSpec:
        if e.is_gguf:
            return gguf_layout.gguf_spec(self._fp16_diffusion(), e.diffusion_precision)
        if e.role == "diffusion_model":
            return diffusion.diffusion_spec(self.env, e.path, e.diffusion_precision, STD)
        if e.role == "distill_lora":
            facts = LORAS[e.id]
            targets = diffusion.lora_targets(self.env, self._diffusion_name(), facts.base)
            return diffusion.lora_spec(targets, facts.rank, STD)
        if e.role == "text_encoder":
            return encoders.t5_spec(self.env, STD)
        if e.role == "vae":
            return encoders.vae_spec(self.env, STD)
        if e.role == "clip_vision":
            return encoders.clip_spec(self.env, STD)
        raise CatalogError(f"{e.id}: role {e.role} is not a safetensors file")

    def _diffusion_name(self) -> str:
        models = [e for e in self.by_role("diffusion_model") if not e.is_gguf]
        if not models:
            raise CatalogError("models.json has no safetensors diffusion_model entry to derive shapes from")
        return models[0].path

    def _fp16_diffusion(self) -> FileSpec:
        # The model as the loader builds it, every parameter at its shape: what a GGUF is converted from.
        if "_fp16_model" not in self._specs:
            self._specs["_fp16_model"] = diffusion.diffusion_spec(self.env, self._diffusion_name(), "fp16", STD)
        return self._specs["_fp16_model"]

    def model_shapes(self) -> dict[str, tuple[int, ...]]:
        return {t.name: t.shape for t in self._fp16_diffusion().tensors}

    def expected_gib(self, e: Entry) -> float | None:
        key = (e.role, e.diffusion_precision if e.role == "diffusion_model" else None)
        return EXPECTED_GIB.get(key)

    # --- checks ----------------------------------------------------------------------------------

    def check_spec(self, e: Entry) -> dict:
        """Runs the loader on the spec itself (no file): meta tensors, or empty CPU tensors for
        loaders that copy values; a GGUF spec is written as a sparse file (header exact, no data)."""
        spec = self.spec(e)
        if isinstance(spec, GGUFSpec):
            return self.check_gguf_spec(e, spec)
        if e.role in ("vae", "clip_vision"):
            return self.check_with(e, lambda _path: spec.empty_state_dict())
        sd = spec.meta_state_dict()
        facts = self.check_with(e, lambda _path: sd)
        facts["file_gib"] = round(file_size(spec) / 2**30, 3)
        expected = self.expected_gib(e)
        if expected is not None and abs(facts["file_gib"] - expected) > 0.05:
            raise LoaderExpectationError(f"{e.id}: {facts['file_gib']} GiB, expected about {expected} GiB")
        return facts

    def check_gguf_spec(self, e: Entry, spec: GGUFSpec) -> dict:
        with tempfile.TemporaryDirectory(prefix="synthetic-gguf-") as root:
            self.env.use_models_root(root, [e.folder])
            try:
                size = write_gguf(e.file(root), spec, None)
                facts = gguf_check.verify_gguf(self.env, e.path, self.model_shapes())
            finally:
                self.env.drop_models_root(root, [e.folder])
        facts["file_gb"] = round(size / 1e9, 3)
        expected = EXPECTED_GGUF_GB.get(e.diffusion_precision)
        if expected is not None and not expected - 0.05 <= facts["file_gb"] < expected + 0.05:
            raise LoaderExpectationError(f"{e.id}: {facts['file_gb']} GB, published as {expected} GB")
        return facts

    def check_file(self, e: Entry) -> dict:
        """Runs the loader on the written file under the models root."""
        assert self.root is not None
        path = e.file(self.root)
        if not os.path.isfile(path):
            raise LoaderExpectationError(f"{e.relpath}: no such file under {self.root}")
        if e.role in ONNX_ROLES:
            return self._check_pose()
        if e.is_gguf:
            return gguf_check.verify_gguf(self.env, e.path, self.model_shapes())
        if e.role in ("vae", "clip_vision"):
            return self.check_with(e, None)
        return self.check_with(e, self._from_root)

    def _from_root(self, resolved: str) -> dict:
        if not os.path.abspath(resolved).startswith(os.path.abspath(self.root) + os.sep):
            raise LoaderExpectationError(f"the loader resolved {resolved}, outside the models root")
        return header_state_dict(resolved)

    def check_with(self, e: Entry, source) -> dict:
        """Runs e's loader with load_torch_file answered by source (None: the loader reads the file)."""
        env = self.env
        if e.role == "diffusion_model":
            expect = DiffusionExpectation(e.diffusion_precision, DIFFUSION_PARAMS, DIFFUSION_PARAMS_TOLERANCE,
                                          SCALED_LINEARS if e.diffusion_precision == "fp8" else 0)
            _, facts = diffusion.verify_diffusion(env, e.path, source, expect)
            return facts
        if e.role == "distill_lora":
            return diffusion.verify_lora(env, self._lora_base_model(), e.path, source, LORAS[e.id].patches)
        if e.role == "text_encoder":
            return encoders.verify_t5(env, e.path, source)
        if e.role == "vae":
            return encoders.verify_vae(env, e.path, source)
        if e.role == "clip_vision":
            return encoders.verify_clip(env, e.path, source)
        raise CatalogError(f"{e.id}: no check for role {e.role}")

    def _lora_base_model(self):
        # The SteadyDancer model the LoRAs are applied to, built by the loader from its spec.
        if self._lora_base is None:
            name = self._diffusion_name()
            spec = diffusion.diffusion_spec(self.env, name, "fp8", STD)
            sd = spec.meta_state_dict()
            self._lora_base = diffusion.load_model(self.env, name, lambda _path: sd)
        return self._lora_base

    def _check_pose(self) -> dict:
        (yolo,), (vitpose,) = self.by_role("person_detector"), self.by_role("pose_estimator")
        return pose.verify_pose(self.env, yolo.path, vitpose.path)


def describe(spec: FileSpec | GGUFSpec) -> dict:
    if isinstance(spec, GGUFSpec):
        return {"tensors": len(spec.tensors), "params": spec.params, "dtypes": spec.types()}
    return {"tensors": len(spec.tensors), "params": spec.params,
            "dtypes": dict(Counter(SAFETENSORS_DTYPES[t.dtype] for t in spec.tensors))}
