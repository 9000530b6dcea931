// The benchmark's profile of one transformer pass (docker/comfyui/steadydancer_runtime/step_profile.py)
// under a stand-in ComfyUI, torch and wrapper: exactly the chosen pass of the chosen prompt runs under
// the profiler, every pass returns what the model returned, and a report that cannot be written never
// fails the prompt.
import { describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ROOT, run } from '../image/helpers';

// A profiler that records which passes ran inside it; its report and trace are plain text.
const FAKE_TORCH = `
class _Cuda:
    def is_available(self): return False
cuda = _Cuda()
`;
const FAKE_PROFILER = `
import os
inside = []
active = [False]
class ProfilerActivity:
    CPU, CUDA = "cpu", "cuda"
class _Row:
    self_cpu_time_total = 1.0
class _Averages(list):
    def table(self, sort_by, row_limit, max_name_column_width): return f"table sorted by {sort_by}\\n"
class profile:
    def __init__(self, activities): self.activities = activities
    def __enter__(self): active[0] = True; return self
    def __exit__(self, *exc): active[0] = False
    def key_averages(self): return _Averages([_Row()])
    def export_chrome_trace(self, path):
        if os.environ.get("FAIL_TRACE"): raise OSError("disk full")
        open(path, "w").write('{"traceEvents": []}')
`;
const FAKE_EXECUTION = `
class PromptExecutor:
    async def execute_async(self, model, passes):
        return [model(i) for i in range(passes)]
`;
const FAKE_WRAPPER_MODEL = `
import torch.profiler as profiler
class WanModel:
    def __call__(self, x): return self.forward(x)
    def forward(self, x):
        profiler.inside.append(profiler.active[0])
        return x * 10
`;

const DRIVER = `
import asyncio, importlib, importlib.util, json, logging, sys
sys.path.insert(0, sys.argv[1])
records = []
class Capture(logging.Handler):
    def emit(self, r): records.append(r.getMessage())
logging.getLogger("steadydancer_runtime").addHandler(Capture())
sys.modules["ComfyUI-WanVideoWrapper.wanvideo.modules.model"] = importlib.import_module("wrapper_model")
import execution, torch.profiler as profiler
spec = importlib.util.spec_from_file_location("step_profile", sys.argv[2])  # alone, without the package's start-up hooks
step_profile = importlib.util.module_from_spec(spec); spec.loader.exec_module(step_profile)
install = step_profile.install
model_cls = sys.modules["ComfyUI-WanVideoWrapper.wanvideo.modules.model"].WanModel
model = model_cls()
install()  # as ComfyUI does, once the first prompt has started: its passes come before any other prompt
outputs = [model(i) for i in range(3)]
async def main():
    for _ in range(2):
        outputs.extend(await execution.PromptExecutor().execute_async(model, 3))
asyncio.run(main())
print(json.dumps({"inside": profiler.inside, "outputs": outputs, "records": records}))
`;

async function runHook(env: Record<string, string>) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sd-profile-'));
  mkdirSync(path.join(dir, 'torch'));
  writeFileSync(path.join(dir, 'torch', '__init__.py'), FAKE_TORCH);
  writeFileSync(path.join(dir, 'torch', 'profiler.py'), FAKE_PROFILER);
  writeFileSync(path.join(dir, 'execution.py'), FAKE_EXECUTION);
  writeFileSync(path.join(dir, 'wrapper_model.py'), FAKE_WRAPPER_MODEL);
  writeFileSync(path.join(dir, 'driver.py'), DRIVER);
  const report = path.join(dir, 'profile.txt');
  const r = await run(
    'python3',
    [path.join(dir, 'driver.py'), dir, path.join(ROOT, 'docker/comfyui/steadydancer_runtime/step_profile.py')],
    {
      env: { ...process.env, STEADYDANCER_PROFILE_FILE: report, ...env },
    },
  );
  return { dir, report, r, result: r.code === 0 ? JSON.parse(r.stdout) : null };
}

describe('steadydancer_runtime transformer profile', () => {
  it('profiles only the chosen pass of the chosen prompt and passes every result through', async () => {
    const { dir, report, r, result } = await runHook({ STEADYDANCER_PROFILE_PROMPT: '2', STEADYDANCER_PROFILE_STEP: '2' });
    try {
      expect(r.stderr).toBe('');
      // Prompt 1: 3 passes, prompt 2: passes 1-3 (the second profiled), prompt 3: 3 passes.
      expect(result.inside).toEqual([false, false, false, false, true, false, false, false, false]);
      expect(result.outputs).toEqual([0, 10, 20, 0, 10, 20, 0, 10, 20]);
      expect(readFileSync(report, 'utf8')).toMatch(
        /^prompt 2, WanModel\.forward call 2: [\d.]+ s wall \(profiled\)\n\ntable sorted by self_cpu_time_total/,
      );
      expect(JSON.parse(gunzipSync(readFileSync(`${report}.trace.json.gz`)).toString())).toEqual({ traceEvents: [] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('logs a report it cannot write and still returns the pass', async () => {
    const { dir, r, result } = await runHook({ STEADYDANCER_PROFILE_PROMPT: '1', STEADYDANCER_PROFILE_STEP: '3', FAIL_TRACE: '1' });
    try {
      expect(r.stderr).toBe('');
      expect(result.inside).toEqual([false, false, true, false, false, false, false, false, false]);
      expect(result.outputs[2]).toBe(20);
      expect(result.records).toEqual(['steadydancer_runtime: profile not written: disk full']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
