"""Checks the ComfyUI hook's prepared-weight cache (docker/comfyui/steadydancer_runtime/weight_cache.py)
against the pinned wrapper's own CustomLinear: the same outputs, bit for bit, with and without it.

    python3 bench/gpu/weight_cache_check.py --wrapper <ComfyUI>/custom_nodes/ComfyUI-WanVideoWrapper [--device cuda]

Builds the wrapper's CustomLinear layers as its loader and set_lora_params do for the fp8 file with the
lightx2v LoRA (an e4m3fn weight with a scale_weight, a rank-r LoRA at strength 1, a bias), runs a few
"steps" of a stand-in transformer over them (long inputs, where the weight is scaled, and short ones,
where the wrapper scales the input instead), first through the wrapper's forward, then with the cache
installed, and compares every output with torch.equal (under inference mode, as ComfyUI runs them). Prints one JSON line; exits 1 on any difference.
"""

import argparse
import importlib.util
import json
import os
import sys
import time
import types

import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def load_custom_linear(wrapper_dir):
    # The wrapper's package without its node registrations: custom_linear and what it imports relatively.
    package = types.ModuleType("wrapper_pkg")
    package.__path__ = [wrapper_dir]
    sys.modules["wrapper_pkg"] = package
    return importlib.import_module("wrapper_pkg.custom_linear")


def load_weight_cache():
    path = os.path.join(HERE, "../../docker/comfyui/steadydancer_runtime/weight_cache.py")
    spec = importlib.util.spec_from_file_location("weight_cache", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_layer(custom_linear, out_features, in_features, rank, device, generator):
    w = torch.randn(out_features, in_features, generator=generator) * 0.05
    scale = w.abs().max() / 448
    layer = custom_linear.CustomLinear(in_features, out_features, bias=True, compute_dtype=torch.bfloat16, scale_weight=scale.to(device))
    layer.weight = torch.nn.Parameter((w / scale).to(torch.float8_e4m3fn).to(device), requires_grad=False)
    layer.bias = torch.nn.Parameter((torch.randn(out_features, generator=generator) * 0.01).to(torch.bfloat16).to(device), requires_grad=False)
    up = torch.randn(out_features, rank, generator=generator) * 0.02
    down = torch.randn(rank, in_features, generator=generator) * 0.02
    layer.set_lora_diffs([(up, down, float(rank))], device=device)
    layer.set_lora_strengths([1.0], device=device)
    return layer


class WanModel(torch.nn.Module):
    """Stand-in transformer: the hook keys its 'runs whole on the GPU' test on this class's forward."""

    def __init__(self, layers):
        super().__init__()
        self.layers = torch.nn.ModuleList(layers)
        self.blocks_to_swap = -1

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


def run(model, inputs):
    return [model(x) for x in inputs]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wrapper", required=True)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dim", type=int, default=1024)
    args = parser.parse_args()
    device = torch.device(args.device)
    custom_linear = load_custom_linear(args.wrapper)
    generator = torch.Generator().manual_seed(0)
    dim, hidden = args.dim, args.dim * 27 // 10
    layers = [make_layer(custom_linear, o, i, 16, device, generator) for o, i in ((dim, dim), (hidden, dim), (dim, hidden))]
    model = WanModel(layers)
    # Long inputs (more elements than a weight: the weight is scaled) and short ones (the input is).
    inputs = [torch.randn(1, n, dim, generator=generator).to(torch.bfloat16).to(device) for n in (4 * dim, 4 * dim, 3, 4 * dim, 2)]

    with torch.inference_mode():  # as ComfyUI runs prompts
        expected = run(model, inputs)
        weight_cache = load_weight_cache()
        execution = types.ModuleType("execution")

        async def execute(*a, **k):
            return None

        execution.execute = execute
        sys.modules["execution"] = execution
        released = []
        cache = weight_cache.WeightCache(
            torch, custom_linear.CustomLinear, WanModel, lambda d: (1 << 50, 1 << 50), lambda: released.append(1), device_types=(device.type,)
        )
        cache.install()
        t0 = time.perf_counter()
        cached = run(model, inputs)
        seconds = time.perf_counter() - t0
        kept = cache.kept_bytes
        import asyncio

        asyncio.run(execution.execute())  # the node ends: the cache lets go
    same = [bool(torch.equal(a, b)) for a, b in zip(expected, cached)]
    result = {
        "device": str(device),
        "torch": torch.__version__,
        "outputs_equal": same,
        "kept_mib_during_node": round(kept / 2**20, 1),
        "released_after_node": bool(released) and cache.kept_bytes == 0,
        "cached_run_s": round(seconds, 3),
    }
    print(json.dumps(result))
    sys.exit(0 if all(same) and kept > 0 and result["released_after_node"] else 1)


if __name__ == "__main__":
    main()
