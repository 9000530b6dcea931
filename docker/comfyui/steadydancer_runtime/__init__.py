"""steadydancer-worker's ComfyUI hooks. No nodes: prestartup_script.py sets up the GPU; this module
adds opt-in per-node timing for the GPU benchmark (STEADYDANCER_TIMINGS_FILE=<path>: JSON lines)."""

import os

NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}

if os.environ.get("STEADYDANCER_TIMINGS_FILE"):
    from .timings import install

    install(os.environ["STEADYDANCER_TIMINGS_FILE"])
