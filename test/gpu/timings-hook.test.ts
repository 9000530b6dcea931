// The ComfyUI timing hook (docker/comfyui/steadydancer_runtime/timings.py) under a stand-in ComfyUI and
// torch: the wrapper resets PyTorch's peak statistics itself (VAE, sampler), and the hook must still
// report the whole prompt's peak, which the capped low-VRAM runs are judged by.
import { describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, run } from '../image/helpers';

const GIB = 1024 ** 3;

// A torch whose allocator the script drives: alloc/free move "allocated", the peaks follow, reset
// restarts them from the current figure as PyTorch does.
const FAKE_TORCH = `
class _Cuda:
    def __init__(self):
        self.allocated = self.reserved = self.peak = self.peak_reserved = 0
    def is_available(self): return True
    def synchronize(self): pass
    def max_memory_allocated(self, device=None): return self.peak
    def max_memory_reserved(self, device=None): return self.peak_reserved
    def reset_peak_memory_stats(self, device=None):
        self.peak, self.peak_reserved = self.allocated, self.reserved
    def alloc(self, n):
        self.allocated += n
        self.reserved = max(self.reserved, self.allocated)
        self.peak = max(self.peak, self.allocated)
        self.peak_reserved = max(self.peak_reserved, self.reserved)
    def free(self, n): self.allocated -= n
cuda = _Cuda()
`;

const FAKE_EXECUTION = `
import torch
G = 1024 ** 3
async def execute(server, dynprompt, caches, current_item, *args, **kwargs):
    if current_item == "50":   # the sampler: 17 GiB, then resets the peak as the wrapper does
        torch.cuda.alloc(17 * G); torch.cuda.free(17 * G); torch.cuda.reset_peak_memory_stats("cuda")
    if current_item == "51":   # the decode: 4 GiB
        torch.cuda.alloc(4 * G); torch.cuda.free(4 * G)
class PromptExecutor:
    async def execute_async(self, prompt, prompt_id, *args, **kwargs):
        for node in ("50", "51"):
            await execute(None, _Prompt(), _Caches(), node, None, None, prompt_id)
class _Prompt:
    def get_node(self, i): return {"class_type": {"50": "WanVideoSampler", "51": "WanVideoDecode"}[i]}
class _Caches:
    class outputs:
        @staticmethod
        def get(i): return None
`;

const DRIVER = `
import asyncio, json, sys
sys.path.insert(0, sys.argv[1])
import execution, torch
from steadydancer_runtime.timings import install
install(sys.argv[2])
async def main():
    await execution.PromptExecutor().execute_async({}, "p1")
    await execution.PromptExecutor().execute_async({}, "p2")
asyncio.run(main())
`;

describe('steadydancer_runtime timing hook', () => {
  it("reports the whole prompt's PyTorch peak across the wrapper's own peak resets, per prompt", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sd-hook-'));
    try {
      writeFileSync(path.join(dir, 'torch.py'), FAKE_TORCH);
      writeFileSync(path.join(dir, 'execution.py'), FAKE_EXECUTION);
      writeFileSync(path.join(dir, 'driver.py'), DRIVER);
      // install() also wraps comfy.utils.ProgressBar: a stand-in package with that class.
      mkdirSync(path.join(dir, 'comfy'));
      writeFileSync(path.join(dir, 'comfy', '__init__.py'), '');
      writeFileSync(
        path.join(dir, 'comfy', 'utils.py'),
        'class ProgressBar:\n    def update_absolute(self, value, total=None, preview=None): pass\n',
      );
      const lines = path.join(dir, 'timings.jsonl');
      const r = await run('python3', [path.join(dir, 'driver.py'), dir, lines], {
        env: {
          ...process.env,
          STEADYDANCER_POSE_DRAWING: 'pack',
          STEADYDANCER_PARALLEL_RESIZE: 'off',
          STEADYDANCER_WEIGHT_CACHE: 'off',
          PYTHONPATH: [dir, path.join(ROOT, 'docker/comfyui')].join(path.delimiter),
        },
      });
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      const ends = readFileSync(lines, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .filter((e) => e.ev === 'prompt_end');
      expect(ends.map((e) => [e.prompt_id, e.peak_bytes / GIB, e.peak_reserved_bytes / GIB])).toEqual([
        ['p1', 17, 17],
        // the second prompt starts from what is allocated then (nothing), not from the first prompt's peak
        ['p2', 17, 17],
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
