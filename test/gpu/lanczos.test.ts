// The ComfyUI hook's parallel Lanczos resize (docker/comfyui/steadydancer_runtime/lanczos.py) with the
// image's NumPy and Pillow (hook-python.ts). Its tensor glue runs here on a NumPy-backed stand-in for the
// few torch calls it makes, and the stand-in comfy.utils.lanczos plays ComfyUI's function in the first-call
// check. Against ComfyUI's real lanczos when COMFYUI_REAL_DIR names a ComfyUI checkout and COMFYUI_PYTHON
// a Python with its requirements (torch).
import { describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, run } from '../image/helpers';
import { hookPython } from './hook-python';

const HOOKS = path.join(ROOT, 'docker/comfyui');

const FAKE_TORCH = `
import numpy as np
class Tensor:
    device, dtype = "cpu", "float32"
    def __init__(self, a): self.a = np.asarray(a)
    def movedim(self, s, d): return Tensor(np.moveaxis(self.a, s, d))
    def cpu(self): return self
    def numpy(self): return self.a
    def __iter__(self): return (Tensor(x) for x in self.a)
    def __len__(self): return len(self.a)
    def __getitem__(self, k): return Tensor(self.a[k])
    def to(self, device, dtype): return self
def from_numpy(a): return Tensor(a)
def stack(ts): return Tensor(np.stack([t.a for t in ts]))
def equal(x, y): return x.a.shape == y.a.shape and bool(np.array_equal(x.a, y.a))
`;

// Scenario: a stand-in comfy.utils whose lanczos is the single-thread path (or one value off), then
// 12 random 96x64 frames resized to 40x72 through whatever comfy.utils.lanczos is after install().
const DRIVER = `
import json, logging, sys, types
import numpy as np
records = []
class Capture(logging.Handler):
    def emit(self, r): records.append([r.levelname, r.getMessage()])
log = logging.getLogger("steadydancer_runtime"); log.addHandler(Capture()); log.setLevel(logging.INFO)
import torch
from steadydancer_runtime import lanczos as hook
offset = float(sys.argv[1])
calls = {"n": 0}
def comfy_lanczos(samples, width, height):
    calls["n"] += 1
    frames = [hook.resize_frame(image.movedim(0, -1).cpu().numpy(), width, height) + offset for image in samples]
    return torch.stack([torch.from_numpy(f).movedim(-1, 0) for f in frames])
comfy = types.ModuleType("comfy"); comfy.__path__ = []
comfy.utils = types.ModuleType("comfy.utils"); comfy.utils.lanczos = comfy_lanczos
sys.modules["comfy"], sys.modules["comfy.utils"] = comfy, comfy.utils
hook.install(); hook.install()
rng = np.random.default_rng(7)
x = torch.from_numpy(rng.random((12, 3, 96, 64), dtype=np.float32))
first = comfy.utils.lanczos(x, 40, 72)
second = comfy.utils.lanczos(x, 40, 72)
sequential = np.stack([np.moveaxis(hook.resize_frame(np.moveaxis(f, 0, -1), 40, 72), -1, 0) for f in x.a])
print(json.dumps({
    "shape": list(first.a.shape),
    "comfy_calls": calls["n"],
    "first_is_sequential": bool(np.array_equal(first.a, sequential)),
    "second_is_sequential": bool(np.array_equal(second.a, sequential)),
    "second_is_comfys": bool(np.array_equal(second.a, sequential + offset)),
    "log": records,
}))
`;

describe('steadydancer_runtime parallel Lanczos resize', () => {
  async function scenario(offset: number) {
    const python = await hookPython();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sd-lanczos-'));
    try {
      mkdirSync(path.join(dir, 'torch'));
      writeFileSync(path.join(dir, 'torch', '__init__.py'), FAKE_TORCH);
      writeFileSync(path.join(dir, 'driver.py'), DRIVER);
      // the package's __init__ wraps ComfyUI's execution.execute
      writeFileSync(path.join(dir, 'execution.py'), 'async def execute(*args, **kwargs):\n    return None\n');
      const r = await run(python, [path.join(dir, 'driver.py'), String(offset)], {
        env: {
          ...process.env,
          STEADYDANCER_POSE_DRAWING: 'pack',
          STEADYDANCER_GC_FREEZE: 'off',
          PYTHONPATH: [dir, HOOKS].join(path.delimiter),
        },
        timeoutMs: 120_000,
      });
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      return JSON.parse(r.stdout) as Record<string, unknown>;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('resizes every frame, in order, as the one-thread path does; checks the first call against ComfyUI’s', async () => {
    const out = await scenario(0);
    // ComfyUI's function ran once, on the first frame, for the check
    expect(out).toMatchObject({ shape: [12, 3, 72, 40], comfy_calls: 1, first_is_sequential: true, second_is_sequential: true });
    expect(out.log).toEqual([
      ['INFO', expect.stringMatching(/^steadydancer_runtime: parallel Lanczos resize installed \(\d+ threads\)$/)],
      ['INFO', "steadydancer_runtime: parallel Lanczos resize matches ComfyUI's on the first frame"],
    ]);
  }, 900_000);

  it('puts ComfyUI’s function back for good when the first call differs', async () => {
    const out = await scenario(1 / 255);
    // the check, then the whole first batch and the second batch by ComfyUI's function
    expect(out).toMatchObject({ comfy_calls: 3, second_is_comfys: true, first_is_sequential: false });
    expect((out.log as string[][]).at(-1)).toEqual([
      'ERROR',
      "steadydancer_runtime: parallel Lanczos resize differs from ComfyUI's; using ComfyUI's",
    ]);
  }, 900_000);

  const comfyDir = process.env.COMFYUI_REAL_DIR;
  const comfyPython = process.env.COMFYUI_PYTHON;
  (comfyDir && comfyPython ? it : it.skip)(
    'matches ComfyUI’s real comfy.utils.lanczos bit for bit (COMFYUI_REAL_DIR, COMFYUI_PYTHON)',
    async () => {
      const check = [
        'import sys, torch',
        'import comfy.utils as cu',
        'from steadydancer_runtime import lanczos as hook',
        'x = torch.rand(33, 3, 832, 480, generator=torch.Generator().manual_seed(3))',
        'ours = hook.parallel(cu.lanczos)',
        'print(all(torch.equal(cu.lanczos(x, w, h), ours(x, w, h)) for w, h in ((480, 832), (512, 896), (240, 416))))',
      ].join('\n');
      const r = await run(comfyPython!, ['-c', check], {
        cwd: comfyDir,
        env: { ...process.env, PYTHONPATH: [comfyDir!, HOOKS].join(path.delimiter) },
        timeoutMs: 300_000,
      });
      expect({ code: r.code, out: r.stdout.trim().split('\n').at(-1) }).toEqual({ code: 0, out: 'True' });
    },
    900_000,
  );
});
