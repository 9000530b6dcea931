"""Puts WanVideoWrapper's umT5 embedding cache where the worker says, bounded in size.

With use_disk_cache the wrapper's text encode saves each prompt's embeddings (torch.save of exactly what
the GPU computed: the same numbers come back) and, on a later job with the same prompt, loads them instead
of loading umT5 (10.6 GiB) and encoding. Its own folder is inside the custom node (a container's throwaway
disk, unbounded); the worker names one per text encoder file in STEADYDANCER_TEXT_EMBED_DIR (beside the
models: on a network volume every worker shares it) and a size in STEADYDANCER_TEXT_EMBED_MAX_MB.

Here: the wrapper's cache_dir is pointed there; before each lookup the oldest files go once the folder is
over its size (checked at most every PRUNE_EVERY_S); a cache file that exists but does not load (a write
cut short, or another worker's write in progress) is deleted, so the wrapper writes it anew instead of
trying it on every job.
"""

import importlib
import logging
import os
import sys
import tempfile
import time

log = logging.getLogger("steadydancer_runtime")

PACK_PACKAGE_SUFFIX = "ComfyUI-WanVideoWrapper"
PRUNE_EVERY_S = 30.0


def prune(directory, max_bytes):
    """Deletes the least recently written .pt files until the folder holds at most max_bytes."""
    entries = []
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if name.endswith(".pt") and os.path.isfile(path):
            stat = os.stat(path)
            entries.append((stat.st_mtime, stat.st_size, path))
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries):
        if total <= max_bytes:
            break
        try:
            os.remove(path)
            total -= size
        except FileNotFoundError:
            total -= size  # another worker pruned it
    return total


def install():
    """False while the wrapper is not loaded or no folder is set (the wrapper's behaviour then stays)."""
    directory = os.environ.get("STEADYDANCER_TEXT_EMBED_DIR")
    packs = [name for name in list(sys.modules) if name.endswith(PACK_PACKAGE_SUFFIX)]
    if not directory or not packs:
        return False
    max_bytes = float(os.environ.get("STEADYDANCER_TEXT_EMBED_MAX_MB", "2048")) * 2**20
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        # A read-only volume: still bounded, in this container's temporary folder.
        fallback = os.path.join(tempfile.gettempdir(), "steadydancer-text-embeds", os.path.basename(directory))
        log.warning("steadydancer_runtime: cannot use %s for umT5 embeddings (%s); using %s", directory, exc, fallback)
        directory = fallback
        os.makedirs(directory, exist_ok=True)
    for pack in packs:
        nodes = importlib.import_module(pack + ".nodes")
        if getattr(nodes.get_cached_text_embeds, "steadydancer_cache", False):
            continue
        nodes.cache_dir = directory  # get_cache_path and get_cached_text_embeds read the module's global
        lookup = nodes.get_cached_text_embeds
        pruned_at = [float("-inf")]

        def get_cached_text_embeds(positive_prompt, negative_prompt, _nodes=nodes, _lookup=lookup, _pruned_at=pruned_at):
            if time.monotonic() - _pruned_at[0] >= PRUNE_EVERY_S:
                _pruned_at[0] = time.monotonic()
                prune(directory, max_bytes)
            context, context_null = _lookup(positive_prompt, negative_prompt)
            for prompt, loaded in ((positive_prompt, context), (negative_prompt, context_null)):
                path = _nodes.get_cache_path(prompt)
                if loaded is None and os.path.exists(path):
                    try:
                        os.remove(path)
                    except FileNotFoundError:
                        pass
            return context, context_null

        get_cached_text_embeds.steadydancer_cache = True
        nodes.get_cached_text_embeds = get_cached_text_embeds
        log.info("steadydancer_runtime: umT5 embeddings cached in %s (at most %.0f MiB)", directory, max_bytes / 2**20)
    return True
