"""Imports the pinned ComfyUI and custom nodes from --comfy-dir, the way ComfyUI would, on the CPU.

Nothing here runs a model: specs are built on the meta device from the loaders' own classes and
the checks drive the loaders' own functions. The custom node packs are imported as packages
without running their __init__ (that would import every node and its dependencies).
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType

WRAPPER_DIR = "custom_nodes/ComfyUI-WanVideoWrapper"
PREPROCESS_DIR = "custom_nodes/ComfyUI-WanAnimatePreprocess"


class ComfySourceError(RuntimeError):
    """The --comfy-dir tree is not the layout the pinned sources have."""


@dataclass
class ComfyEnv:
    comfy_dir: str
    folder_paths: ModuleType
    comfy_utils: ModuleType
    clip_vision: ModuleType
    model_loading: ModuleType  # ComfyUI-WanVideoWrapper/nodes_model_loading.py
    t5: ModuleType  # ComfyUI-WanVideoWrapper/wanvideo/modules/t5.py
    wrapper_utils: ModuleType  # ComfyUI-WanVideoWrapper/utils.py
    wrapper_package: str
    preprocess_package: str | None = None

    def import_wrapper(self, module: str) -> ModuleType:
        return importlib.import_module(f"{self.wrapper_package}.{module}")

    def import_preprocess(self, module: str) -> ModuleType:
        if self.preprocess_package is None:
            self.preprocess_package = _register_package(
                "synthetic_wan_animate_preprocess", os.path.join(self.comfy_dir, PREPROCESS_DIR))
        return importlib.import_module(f"{self.preprocess_package}.{module}")

    def use_models_root(self, root: str, folders: list[str]) -> None:
        """Makes <root>/<folder> the first place ComfyUI looks, as extra_model_paths.yaml does."""
        for folder in folders:
            self.folder_paths.add_model_folder_path(folder, os.path.join(root, folder), is_default=True)

    def drop_models_root(self, root: str, folders: list[str]) -> None:
        """Undoes use_models_root (a temporary root that is about to be deleted)."""
        for folder in folders:
            paths = self.folder_paths.folder_names_and_paths[folder][0]
            if os.path.join(root, folder) in paths:
                paths.remove(os.path.join(root, folder))


def load_comfy(comfy_dir: str) -> ComfyEnv:
    comfy_dir = os.path.abspath(comfy_dir)
    for required in ("comfy/model_management.py", "folder_paths.py", f"{WRAPPER_DIR}/nodes_model_loading.py"):
        if not os.path.isfile(os.path.join(comfy_dir, required)):
            raise ComfySourceError(f"--comfy-dir {comfy_dir} lacks {required}: point it at the pinned ComfyUI tree "
                                   "with custom_nodes/ComfyUI-WanVideoWrapper inside")
    if comfy_dir not in sys.path:
        sys.path.insert(0, comfy_dir)
    import comfy.options

    comfy.options.enable_args_parsing(False)
    from comfy.cli_args import args

    # Only meta tensors and small CPU loads happen here; never let model_management claim a GPU.
    args.cpu = True
    with quiet():
        import comfy.clip_vision
        import comfy.utils
        import folder_paths

        package = _register_package("synthetic_wan_video_wrapper", os.path.join(comfy_dir, WRAPPER_DIR))
        model_loading = importlib.import_module(f"{package}.nodes_model_loading")
        t5 = importlib.import_module(f"{package}.wanvideo.modules.t5")
        wrapper_utils = importlib.import_module(f"{package}.utils")
    return ComfyEnv(comfy_dir, folder_paths, comfy.utils, comfy.clip_vision, model_loading, t5, wrapper_utils, package)


def _register_package(name: str, path: str) -> str:
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, os.path.join(path, "__init__.py"),
                                                      submodule_search_locations=[path])
        if spec is None:
            raise ComfySourceError(f"cannot import {path} as a package")
        sys.modules[name] = importlib.util.module_from_spec(spec)
    return name


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    # The packs warn about optional extras (sageattention, torchaudio) at import; not our concern.
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


@contextlib.contextmanager
def patched(module: ModuleType, name: str, replacement: Callable | type) -> Iterator[None]:
    """Swaps one global of a loader module for the duration of a check (e.g. its load_torch_file)."""
    original = getattr(module, name)
    setattr(module, name, replacement)
    try:
        yield
    finally:
        setattr(module, name, original)
