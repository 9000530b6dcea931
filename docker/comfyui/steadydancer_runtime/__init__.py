"""steadydancer-worker's ComfyUI hooks. No nodes: prestartup_script.py sets up the GPU; this module
replaces the pose pack's skeleton drawing with an exact, faster one (pose_drawing.py), keeps the pose
pack's ONNX sessions between prompts on big cards (pose_sessions.py), resizes frames with ComfyUI's
Lanczos on a thread pool (lanczos.py), places and bounds the wrapper's umT5 embedding cache
(text_embeds.py), keeps the linear layers' prepared weights while the sampler runs (weight_cache.py),
takes start-up objects out of garbage collection before the first prompt (gc_freeze.py) and adds, for
the GPU benchmark, opt-in per-node timing (STEADYDANCER_TIMINGS_FILE=<path>: JSON lines) and a profile
of one transformer pass (STEADYDANCER_PROFILE_FILE=<path>: step_profile.py)."""

import importlib
import logging
import os

NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}

log = logging.getLogger("steadydancer_runtime")


def _before_first_node(steps):
    """Runs each (name, step) once, when the first node of the first prompt executes: every pack is
    loaded by then (packs load in directory order, so some are not yet when this module is). A failing
    step is logged and never fails the prompt. The wrapper stays (a flag test per node), because the
    timing hook may wrap it in turn."""
    import execution

    original_execute = execution.execute
    pending = list(steps)

    async def execute(*args, **kwargs):
        while pending:
            name, step = pending.pop(0)
            try:
                step()
            except Exception as exc:
                log.warning("steadydancer_runtime: %s skipped: %s", name, exc)
        return await original_execute(*args, **kwargs)

    execution.execute = execute


def _later(module, function):
    """The step `module.function`, imported when it runs: a module that cannot load (its NumPy, OpenCV or
    Pillow) then skips only its own step, with the reason logged."""

    def step():
        getattr(importlib.import_module(f"{__name__}.{module}"), function)()

    return step


def _deferred_steps():
    steps = []
    if os.environ.get("STEADYDANCER_POSE_DRAWING", "fast") != "pack":
        # The pack imports its drawing module when its node first runs: installing before the first node is in time.
        steps.append(("fast pose drawing", _later("pose_drawing", "install")))
    if os.environ.get("STEADYDANCER_PARALLEL_RESIZE", "on") != "off":
        steps.append(("parallel Lanczos resize", _later("lanczos", "install")))
    steps.append(("pose session keeping", _later("pose_sessions", "install")))
    if os.environ.get("STEADYDANCER_TEXT_EMBED_DIR"):
        steps.append(("text embedding cache", _later("text_embeds", "install")))
    if os.environ.get("STEADYDANCER_WEIGHT_CACHE", "on") != "off":
        steps.append(("prepared weight cache", _later("weight_cache", "install")))
    if os.environ.get("STEADYDANCER_PROFILE_FILE"):
        steps.append(("transformer profile", _later("step_profile", "install")))
    if os.environ.get("STEADYDANCER_GC_FREEZE", "on") != "off":
        steps.append(("garbage-collection freeze", _later("gc_freeze", "freeze_startup_objects")))
    return steps


try:
    _before_first_node(_deferred_steps())
except Exception as exc:
    log.warning("steadydancer_runtime: start-up hooks not installed: %s", exc)

if os.environ.get("STEADYDANCER_TIMINGS_FILE"):
    from .timings import install as install_timings

    install_timings(os.environ["STEADYDANCER_TIMINGS_FILE"])
