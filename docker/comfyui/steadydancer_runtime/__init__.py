"""steadydancer-worker's ComfyUI hooks. No nodes: prestartup_script.py sets up the GPU; this module
replaces the pose pack's skeleton drawing with an exact, faster one (pose_drawing.py) and adds opt-in
per-node timing for the GPU benchmark (STEADYDANCER_TIMINGS_FILE=<path>: JSON lines)."""

import logging
import os

NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}


def _pose_drawing_unavailable(exc):
    """The speed-up never keeps ComfyUI from starting or a prompt from running."""
    logging.getLogger("steadydancer_runtime").warning("steadydancer_runtime: pose drawing left as the pack's: %s", exc)


def _install_pose_drawing_before_prompts():
    """Node packs load in directory order, so the pose pack may not be loaded yet: then install on the
    first node executed (every pack is loaded by then). The wrapper stays (a flag test per node), because
    the timing hook may wrap it in turn."""
    import execution

    from .pose_drawing import install

    if install():
        return
    original_execute = execution.execute
    state = {"installed": False}

    async def execute(*args, **kwargs):
        if not state["installed"]:
            state["installed"] = True  # one attempt (all packs are loaded by now), never a failed prompt
            try:
                install()
            except Exception as exc:
                _pose_drawing_unavailable(exc)
        return await original_execute(*args, **kwargs)

    execution.execute = execute


if os.environ.get("STEADYDANCER_POSE_DRAWING", "fast") != "pack":
    try:
        _install_pose_drawing_before_prompts()
    except Exception as exc:
        _pose_drawing_unavailable(exc)

if os.environ.get("STEADYDANCER_TIMINGS_FILE"):
    from .timings import install as install_timings

    install_timings(os.environ["STEADYDANCER_TIMINGS_FILE"])
