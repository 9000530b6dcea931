// The ComfyUI hook's prepared-weight cache (docker/comfyui/steadydancer_runtime/weight_cache.py) under a
// stand-in torch, ComfyUI and wrapper CustomLinear that follow the wrapper's forward (weight upcast to the
// input's dtype, scaled where the weight is the smaller tensor, else the input; LoRA added; linear). What
// it decides: when a prepared weight is kept, reused and let go, and that a pass computes what the wrapper
// computes. Bit-exactness against the real wrapper and PyTorch: bench/gpu/weight_cache_check.py.
import { describe, expect, it } from '@jest/globals';
import path from 'node:path';
import { ROOT, run } from '../image/helpers';
import { loadHookModule } from './hook-python';

const SCRIPT = `${loadHookModule('weight_cache', 'weight_cache')}
import asyncio, itertools, json, types

_ptr = itertools.count(1)
class Device:
    def __init__(self, type): self.type = type
    def __eq__(self, other): return self.type == other.type
class Tensor:
    conversions = 0  # weight upcasts: what the cache saves
    def __init__(self, value, dtype="bf16", device="cuda", numel=16):
        self.value, self.dtype, self.device, self._numel = value, dtype, Device(device), numel
        self.shape, self._version, self._ptr = (numel,), 0, next(_ptr)
    def data_ptr(self): return self._ptr
    def is_inference(self): return True
    def numel(self): return self._numel
    def element_size(self): return 2
    def to(self, other):
        if (other.dtype, other.device) == (self.dtype, self.device): return self
        Tensor.conversions += 1
        return Tensor(self.value, other.dtype, other.device.type, self._numel)
    def __mul__(self, o): return Tensor(self.value * (o.value if isinstance(o, Tensor) else o), self.dtype, self.device.type, self._numel)
    def __add__(self, o): return Tensor(self.value + o.value, self.dtype, self.device.type, self._numel)
torch = types.SimpleNamespace(Tensor=Tensor, compiler=types.SimpleNamespace(is_compiling=lambda: state["compiling"]))
state = {"compiling": False, "free": 1 << 40, "memory_calls": 0, "released": 0, "fail": False}

class CustomLinear:  # the wrapper's forward, in its order
    def __init__(self, scale, scheduled=False):
        self.weight = Tensor(3.0, "fp8", numel=16)
        self.scale_weight = Tensor(scale, "f32", numel=1) if scale is not None else None
        self.bias = Tensor(0.5, numel=4)
        self.is_gguf = False
        self.lora_diffs = ["lora_diff_0_0"]
        self.lora_diff_0_0 = Tensor(0.25, numel=16)
        self._lora_strength_0 = Tensor(2.0, numel=1)
        self._lora_strength_is_scheduled = [scheduled]
    def _get_weight_with_lora(self, weight):
        if state["fail"]:
            state["fail"] = False  # fails once: the wrapper's own path then succeeds
            raise RuntimeError("patch failed")
        return weight + self.lora_diff_0_0 * self._lora_strength_0.value
    def _linear_forward_impl(self, input, weight, bias):
        return input.value * weight.value + bias.value
    def forward(self, input):
        weight = self.weight.to(input)
        bias = self.bias.to(input)
        if self.scale_weight is not None:
            if weight.numel() < input.numel(): weight = weight * self.scale_weight
            else: input = input * self.scale_weight
        weight = self._get_weight_with_lora(weight)
        return self._linear_forward_impl(input, weight, bias)
    __call__ = lambda self, x: self.forward(x)
class WanModel:
    blocks_to_swap = -1
    def __init__(self, layers): self.layers = layers
    def forward(self, xs): return [layer(x) for layer, x in zip(self.layers, xs)]
    __call__ = lambda self, xs: self.forward(xs)

execution = types.ModuleType("execution")
async def execute(model, passes): return [model(p) for p in passes]
execution.execute = execute
sys.modules["execution"] = execution

def memory(device):
    state["memory_calls"] += 1
    return state["free"], 100 * weight_cache.GIB
def release(): state["released"] += 1
cache = weight_cache.WeightCache(torch, CustomLinear, WanModel, memory, release)

def node(model, passes):
    return asyncio.run(execution.execute(model, passes))
def long(v=1.0): return Tensor(v, numel=64)   # more elements than the weight: the weight is scaled
def short(v=1.0): return Tensor(v, numel=4)   # fewer: the input is scaled

def scenario(name):
    Tensor.conversions = 0
    layers = [CustomLinear(0.5), CustomLinear(2.0), CustomLinear(None)]
    model = WanModel(layers)
    passes = [[long(1.0), short(2.0), long(3.0)], [long(4.0), short(5.0), long(6.0)], [long(7.0), short(8.0), long(9.0)]]
    expected = [[l.forward(x) for l, x in zip(layers, p)] for p in passes]
    before = Tensor.conversions
    if name == "swap": model.blocks_to_swap = 20
    if name == "scheduled": layers[0]._lora_strength_is_scheduled = [True]
    if name == "short of memory": state["free"] = 9 * weight_cache.GIB
    if name == "large input":  # 24 x 2 GiB of input is more than the 40 GiB free (the floors: 15 GiB)
        state["free"] = 40 * weight_cache.GIB
        passes = [[Tensor(1.0, numel=(1 << 30)), short(2.0), long(3.0)]] * 3
    if name == "error": state["fail"] = True
    if name == "compiling": state["compiling"] = True
    out = node(model, passes)
    kept_during = cache.kept_bytes
    result = {
        "same": name == "large input" or out == expected,
        "conversions": Tensor.conversions - before,
        "kept_after_node": cache.kept_bytes,
        "holders_after_node": len(list(cache.holders)),
        "released": state["released"],
        "memory_calls": state["memory_calls"],
    }
    state.update(free=1 << 40, memory_calls=0, released=0, fail=False, compiling=False)
    if name == "error": result["broken"] = cache.broken; cache.broken = False
    return result

cache.install()
results = {name: scenario(name) for name in ("kept", "swap", "scheduled", "short of memory", "large input", "compiling", "error")}
# Outside a WanModel pass (another model's CustomLinear): the wrapper's path, nothing kept.
Tensor.conversions = 0
layer = CustomLinear(0.5); layer(long()); layer(long())
results["outside the transformer"] = {"conversions": Tensor.conversions, "kept": cache.kept_bytes}
print(json.dumps({"results": results, "records": records}))
`;

const MEMORY_SCRIPT = `${loadHookModule('weight_cache', 'weight_cache')}
import json, types
G = weight_cache.GIB
# A 141 GiB card with 100 GiB free; PyTorch has reserved 30 GiB and uses 26 of them.
cuda = types.SimpleNamespace(mem_get_info=lambda d: (100 * G, 141 * G), memory_reserved=lambda d: 30 * G,
                             memory_allocated=lambda d: 26 * G)
torch = types.SimpleNamespace(cuda=cuda)
whole = weight_cache.cuda_memory(torch)("cuda")
capped = weight_cache.cuda_memory(torch, int(32 * G))("cuda")
print(json.dumps({"whole": [whole[0] / G, whole[1] / G], "capped": [capped[0] / G, capped[1] / G]}))
`;

describe('steadydancer_runtime prepared-weight cache', () => {
  it('counts free memory within the per-process cap a rehearsal of a smaller card sets', async () => {
    const r = await run('python3', ['-c', MEMORY_SCRIPT, path.join(ROOT, 'docker/comfyui/steadydancer_runtime/weight_cache.py')]);
    expect(r.stderr).toBe('');
    // Whole card: the driver's 100 GiB free plus PyTorch's 4 unused. Capped at 32 GiB: 2 left to reserve, plus the 4.
    expect(JSON.parse(r.stdout)).toEqual({ whole: [104, 141], capped: [6, 32] });
  });

  it('keeps prepared weights through a node, computes what the wrapper computes, and lets go at its end', async () => {
    const r = await run('python3', ['-c', SCRIPT, path.join(ROOT, 'docker/comfyui/steadydancer_runtime/weight_cache.py')]);
    expect(r.stderr).toBe('');
    const { results, records } = JSON.parse(r.stdout);
    // Three layers, three passes: two fp8 weights upcast once each (the bf16-free third has no scale but is
    // fp8 too: once), against 9 without the cache; kept until the node ends, then released once.
    expect(results.kept).toEqual({ same: true, conversions: 3, kept_after_node: 0, holders_after_node: 0, released: 1, memory_calls: 3 });
    // Block swap: every pass rebuilds, nothing kept, nothing to release.
    expect(results.swap).toEqual({ same: true, conversions: 9, kept_after_node: 0, holders_after_node: 0, released: 0, memory_calls: 0 });
    // A LoRA strength scheduled per step: that layer rebuilds (3), the others are kept (2).
    expect(results.scheduled).toMatchObject({ same: true, conversions: 5, released: 1 });
    // Under the 15% floor (9 of 100 GiB free): nothing kept, and memory asked once for the whole node.
    expect(results['short of memory']).toEqual({
      same: true,
      conversions: 9,
      kept_after_node: 0,
      holders_after_node: 0,
      released: 0,
      memory_calls: 1,
    });
    // An input whose activations would not fit beside the kept weights: not kept.
    expect(results['large input']).toMatchObject({ conversions: 9, released: 0, memory_calls: 1 });
    // Traced by torch.compile: the wrapper's path, which the compiled graph then holds.
    expect(results.compiling).toEqual({
      same: true,
      conversions: 9,
      kept_after_node: 0,
      holders_after_node: 0,
      released: 0,
      memory_calls: 0,
    });
    // An error in the cached path: the pass still computes through the wrapper's own path, the cache turns off.
    expect(results.error).toMatchObject({ same: true, broken: true, kept_after_node: 0 });
    expect(records.filter((m: string) => !m.endsWith('of prepared weights released'))).toEqual([
      'steadydancer_runtime: prepared weight cache off after an error: patch failed',
    ]);
    // One release line per node that kept weights: the first and the scheduled-strength one.
    expect(records.filter((m: string) => m.endsWith('of prepared weights released'))).toHaveLength(2);
    expect(results['outside the transformer']).toEqual({ conversions: 2, kept: 0 });
  });
});
