"""Prepared linear weights kept while the sampler runs (default; STEADYDANCER_WEIGHT_CACHE=off turns it off).

The wrapper's CustomLinear (fp8-scaled weights, unmerged LoRAs) rebuilds each layer's weight in every
forward pass: upcast to bf16, multiply by the file's scale, add the LoRA product. That is about 0.2 s of
each 3.2 s turbo step on an H200 (bench/results/profiles/turbo-81f-fp8-resident-sage-step.txt), and
the result is the same tensor at every step while the weight, its LoRA and their strengths are unchanged.
This keeps it from the first pass and passes it to the same linear call: the same operations in the same
order, so the same bits (bench/gpu/weight_cache_check.py compares it with the pinned wrapper's
CustomLinear, on the CPU and on the H200 at the model's width: equal).

Bounded three ways:
* only while the transformer runs whole on the GPU: no block swap (its blocks come and go every step)
  and the layer's weight on the input's device;
* only while enough memory stays free after each kept weight (the fp8 model's bf16 weights are 30 GiB):
  8 GiB, 15% of the card, and 24x the layer's input, whichever is most (at 81 frames 480x832 the
  prompt's PyTorch peak less the resident weights is about 11x the hidden state), so the passes still
  to come fit at any frame size and small cards keep some layers or none;
* dropped when the ComfyUI node that ran the sampler ends (and the allocator's cache emptied), so the
  VAE decode and the pose models get that memory back.
LoRA strengths scheduled per step, GGUF weights and torch.compile'd passes keep the wrapper's own path.
"""

import logging
import os
import sys
import weakref

log = logging.getLogger("steadydancer_runtime")

GIB = 1024**3
MIN_FREE_BYTES = 8 * GIB
MIN_FREE_FRACTION = 0.15
ACTIVATION_FACTOR = 24
_ATTRIBUTE = "_steadydancer_prepared_weight"


def _wrapper_class(module_suffix, name):
    for module_name, module in list(sys.modules.items()):
        if module_name.endswith(module_suffix) and hasattr(module, name):
            return getattr(module, name)
    raise RuntimeError(f"the wrapper's {module_suffix.lstrip('.')} is not loaded")


def _tensor_key(torch, t):
    if isinstance(t, torch.Tensor):
        # ComfyUI runs prompts in inference mode, whose tensors keep no version counter: an in-place change
        # of those goes unseen here, which is why nothing is kept past the node that runs the sampler.
        version = None if t.is_inference() else t._version
        return (t.data_ptr(), version, tuple(t.shape), t.dtype, t.device)
    return t


def cuda_memory(torch, cap_bytes=None):
    """free(device) -> (bytes free to this process, its total): the driver's free memory plus what
    PyTorch's allocator holds unused. Under a per-process cap (STEADYDANCER_GPU_MEMORY_GB, which
    prestartup_script.py applies) the driver's figures are the whole card's: the cap bounds both."""

    def free(device):
        driver_free, total = torch.cuda.mem_get_info(device)
        reserved = torch.cuda.memory_reserved(device)
        if cap_bytes is not None:
            total = min(total, cap_bytes)
            driver_free = min(driver_free, max(0, cap_bytes - reserved))
        return driver_free + reserved - torch.cuda.memory_allocated(device), total

    return free


class WeightCache:
    def __init__(self, torch, custom_linear, wan_model, memory, release_memory, device_types=("cuda",)):
        self.torch = torch
        self.custom_linear = custom_linear
        self.wan_model = wan_model
        self.memory = memory
        self.release_memory = release_memory
        self.device_types = device_types
        self.active = False  # inside a WanModel forward that runs whole on the GPU
        self.full = False  # memory ran short in this node: stop keeping more
        self.broken = False  # an error in the cached path: the wrapper's own path for the process's life
        self.holders = weakref.WeakSet()
        self.kept_bytes = 0

    def install(self):
        import execution

        cache = self
        original_model_forward = self.wan_model.forward
        original_linear_forward = self.custom_linear.forward
        original_execute = execution.execute

        def model_forward(model, *args, **kwargs):
            previous = cache.active
            cache.active = getattr(model, "blocks_to_swap", -1) <= 0
            try:
                return original_model_forward(model, *args, **kwargs)
            finally:
                cache.active = previous

        def linear_forward(layer, input):
            if cache.broken or not cache.usable(layer, input):
                return original_linear_forward(layer, input)
            try:
                return cache.forward(layer, input)
            except Exception as exc:  # never a job's failure: the wrapper's own path from here on
                cache.broken = True
                cache.release()
                log.warning("steadydancer_runtime: prepared weight cache off after an error: %s", exc)
                return original_linear_forward(layer, input)

        async def execute(*args, **kwargs):
            try:
                return await original_execute(*args, **kwargs)
            finally:
                cache.release()

        self.wan_model.forward = model_forward
        self.custom_linear.forward = linear_forward
        execution.execute = execute

    def usable(self, layer, input):
        if not self.active or layer.is_gguf or input.device.type not in self.device_types or layer.weight.device != input.device:
            return False
        if self.torch.compiler.is_compiling():
            return False
        return not any(getattr(layer, "_lora_strength_is_scheduled", ()))

    def key(self, layer, input, scale_weight_side):
        torch = self.torch
        parts = [scale_weight_side, input.dtype, input.device, _tensor_key(torch, layer.weight), _tensor_key(torch, layer.scale_weight)]
        for names in layer.lora_diffs:
            for name in names if isinstance(names, tuple) else (names,):
                parts.append(_tensor_key(torch, getattr(layer, name, None)))
        for i in range(len(getattr(layer, "_lora_strength_is_scheduled", ()))):
            parts.append(_tensor_key(torch, getattr(layer, f"_lora_strength_{i}", None)))
        return tuple(parts)

    def forward(self, layer, input):
        # CustomLinear.forward, step for step, with its weight preparation done once per key.
        scale = layer.scale_weight
        scale_weight_side = scale is not None and layer.weight.numel() < input.numel()
        key = self.key(layer, input, scale_weight_side)
        kept = layer.__dict__.get(_ATTRIBUTE)
        if kept is not None and kept[0] == key:
            weight = kept[1]
        else:
            layer.__dict__.pop(_ATTRIBUTE, None)
            weight = layer.weight.to(input)
            if scale_weight_side:
                weight = weight * scale
            weight = layer._get_weight_with_lora(weight)
            self.keep(layer, key, weight, input)
        bias = layer.bias.to(input) if layer.bias is not None else None
        if scale is not None and not scale_weight_side:
            input = input * scale
        return layer._linear_forward_impl(input, weight, bias)

    def keep(self, layer, key, weight, input):
        if self.full or weight.data_ptr() == layer.weight.data_ptr():
            return  # nothing was prepared (a plain bf16 weight): nothing to keep
        free, total = self.memory(weight.device)
        activations = ACTIVATION_FACTOR * input.numel() * input.element_size()
        if free < max(MIN_FREE_BYTES, MIN_FREE_FRACTION * total, activations):
            self.full = True
            return
        layer.__dict__[_ATTRIBUTE] = (key, weight)
        self.holders.add(layer)
        self.kept_bytes += weight.numel() * weight.element_size()

    def release(self):
        self.full = False
        if not self.kept_bytes:
            return
        for layer in list(self.holders):
            layer.__dict__.pop(_ATTRIBUTE, None)
        self.holders.clear()
        log.info("steadydancer_runtime: %.1f GiB of prepared weights released", self.kept_bytes / GIB)
        self.kept_bytes = 0
        self.release_memory()


def install():
    import torch

    custom_linear = _wrapper_class(".custom_linear", "CustomLinear")
    wan_model = _wrapper_class("wanvideo.modules.model", "WanModel")
    cap = os.environ.get("STEADYDANCER_GPU_MEMORY_GB")
    memory = cuda_memory(torch, int(float(cap) * GIB) if cap else None)
    WeightCache(torch, custom_linear, wan_model, memory, torch.cuda.empty_cache).install()
