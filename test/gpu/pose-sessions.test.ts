// The ComfyUI hook's pose-session keeping (docker/comfyui/steadydancer_runtime/pose_sessions.py) against a
// stand-in pose pack whose sessions follow the pack's reinit()/cleanup() contract (re-create a missing
// session, delete it after the run) and a stand-in torch reporting the card's memory. Each scenario runs
// three prompts and counts the ONNX sessions created.
import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, run } from '../image/helpers';
import { loadHookModule } from './hook-python';

const HOOK = path.join(ROOT, 'docker/comfyui/steadydancer_runtime/pose_sessions.py');

const FAKE_TORCH = `
import os
class _Props:
    total_memory = int(float(os.environ["FAKE_GPU_GIB"]) * 1024**3)
class cuda:
    @staticmethod
    def is_available(): return True
    @staticmethod
    def get_device_properties(i): return _Props()
`;

const DRIVER = `
${loadHookModule('pose_sessions', 'ps')}
import json, types

out = {"installed_without_pack": ps.install()}
created = []
class SimpleOnnxInference:
    def __init__(self, checkpoint):
        self.checkpoint = checkpoint; self.session = None; self.reinit()
    def reinit(self):
        if self.session is None:
            self.session = object(); created.append(self.checkpoint)
    def cleanup(self):
        del self.session
        self.session = None
name = "/comfyui/custom_nodes/ComfyUI-WanAnimatePreprocess"
for sub, attrs in ((name, {"__path__": []}), (name + ".models", {"__path__": []}),
                   (name + ".models.onnx_models", {"SimpleOnnxInference": SimpleOnnxInference})):
    m = types.ModuleType(sub); m.__dict__.update(attrs); sys.modules[sub] = m
out["installed"] = ps.install(); ps.install()
detector, keypoints = SimpleOnnxInference("yolov10m"), SimpleOnnxInference("vitpose")  # the loader node, once
for prompt in range(3):
    for s in (detector, keypoints): s.reinit()
    for s in (detector, keypoints): s.cleanup()
out["created"] = len(created)
out["log"] = records
print(json.dumps(out))
`;

async function scenario(env: Record<string, string>) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sd-pose-sessions-'));
  try {
    writeFileSync(path.join(dir, 'torch.py'), FAKE_TORCH);
    writeFileSync(path.join(dir, 'driver.py'), DRIVER);
    const clean = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !['VRAM_MODE', 'STEADYDANCER_GPU_MEMORY_GB', 'STEADYDANCER_POSE_SESSIONS'].includes(k)),
    );
    const r = await run('python3', [path.join(dir, 'driver.py'), HOOK], {
      env: { ...clean, FAKE_GPU_GIB: '139.8', ...env, PYTHONPATH: dir },
    });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    return JSON.parse(r.stdout) as { installed_without_pack: boolean; installed: boolean; created: number; log: string[] };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('steadydancer_runtime pose sessions', () => {
  it('keeps both sessions across prompts on a big card: each is created once', async () => {
    const out = await scenario({});
    expect([out.installed_without_pack, out.installed, out.created]).toEqual([false, true, 2]);
    expect(out.log).toEqual([
      'steadydancer_runtime: pose ONNX sessions kept between prompts in ComfyUI-WanAnimatePreprocess (139.8 GiB GPU, kept from 39 GiB)',
    ]);
  });

  it('re-creates them every prompt where the worker offloads the model (small card, process cap, VRAM_MODE low/minimal)', async () => {
    const offloading: Record<string, string>[] = [
      { FAKE_GPU_GIB: '23.6' },
      { STEADYDANCER_GPU_MEMORY_GB: '15.5' },
      { VRAM_MODE: 'low' },
      { VRAM_MODE: 'minimal' },
    ];
    for (const env of offloading) {
      const out = await scenario(env);
      expect(out.created).toBe(6); // 2 at load (used by the first prompt), 2 again for each later one
      expect(out.log[0]).toMatch(/^steadydancer_runtime: pose ONNX sessions re-created for every prompt \(/);
    }
  });

  it('follows VRAM_MODE=high on a small card and STEADYDANCER_POSE_SESSIONS over everything', async () => {
    expect((await scenario({ FAKE_GPU_GIB: '23.6', VRAM_MODE: 'high' })).created).toBe(2);
    expect((await scenario({ VRAM_MODE: 'high', STEADYDANCER_POSE_SESSIONS: 'per-job' })).created).toBe(6);
    expect((await scenario({ VRAM_MODE: 'low', STEADYDANCER_POSE_SESSIONS: 'keep' })).created).toBe(2);
  });
});
