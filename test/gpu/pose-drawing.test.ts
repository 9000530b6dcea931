// The ComfyUI hook's pose drawing (docker/comfyui/steadydancer_runtime/pose_drawing.py) with the image's
// NumPy and OpenCV (hook-python.ts: versions from the lock, from PyPI into a cached venv): how it replaces the pack's
// drawing, checks the first frame and falls back. Against the real pack (pixel equality on random poses)
// when COMFYUI_REAL_DIR names a ComfyUI checkout with ComfyUI-WanAnimatePreprocess in custom_nodes.
import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, run } from '../image/helpers';
import { hookPython } from './hook-python';

const HOOK = path.join(ROOT, 'docker/comfyui/steadydancer_runtime/pose_drawing.py');
const BENCH = path.join(ROOT, 'bench/pose/drawing.py');

// Stand-in packs registered as ComfyUI registers a custom node folder (its path as the module name), with
// a drawing module whose function the hook must replace; each scenario prints what it saw as JSON.
const DRIVER = `
import importlib.util, json, logging, sys, types
import numpy as np
spec = importlib.util.spec_from_file_location("pose_drawing", sys.argv[1])
pd = importlib.util.module_from_spec(spec); spec.loader.exec_module(pd)
records = []
class Capture(logging.Handler):
    def emit(self, r): records.append([r.levelname, r.getMessage()])
log = logging.getLogger("steadydancer_runtime"); log.addHandler(Capture()); log.setLevel(logging.INFO)

spec = importlib.util.spec_from_file_location("pose_bench", sys.argv[2])
bench = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench)
def pose(seed):
    return bench.random_pose(np.random.default_rng(seed))

def register(folder, draw):
    name = "/comfyui/custom_nodes/" + folder
    sys.modules[name] = types.ModuleType(name); sys.modules[name].__path__ = []
    sys.modules[name + ".onetoall"] = types.ModuleType(name + ".onetoall")
    utils = types.ModuleType(name + ".onetoall.utils"); utils.draw_pose_aligned = draw
    sys.modules[name + ".onetoall.utils"] = utils
    return utils

out = {"installed_without_pack": pd.install()}
calls = {"n": 0}
def same(p, H, W, **kw):
    calls["n"] += 1
    return pd.draw_pose(p, H, W, **{k: v for k, v in kw.items() if k != "pose_plan"})
utils = register("ComfyUI-WanAnimatePreprocess", same)
out["installed"] = pd.install(); pd.install()
frames = [utils.draw_pose_aligned(pose(i), 832, 480) for i in range(3)]
out["same"] = {"shape": list(frames[0].shape), "pack_calls": calls["n"],
               "matches_reference": all(np.array_equal(f, pd.draw_pose(pose(i), 832, 480)) for i, f in enumerate(frames))}
utils.draw_pose_aligned(pose(0), 832, 480, pose_plan={"mode": "drop_point", "point_idx": 3})
out["pose_plan_to_pack"] = calls["n"] - out["same"]["pack_calls"]

def differs(p, H, W, **kw):
    image = pd.draw_pose(p, H, W); image[0, 0, 0] ^= 1; differs.n += 1
    return image
differs.n = 0
for name in [n for n in sys.modules if n.startswith("/comfyui/")]: del sys.modules[name]
utils = register("ComfyUI-WanAnimatePreprocess", differs)
pd.install()
frames = [utils.draw_pose_aligned(pose(i), 832, 480) for i in range(3)]
out["differs"] = {"pack_calls": differs.n, "returned_pack": all(f[0, 0, 0] == pd.draw_pose(pose(i), 832, 480)[0, 0, 0] ^ 1 for i, f in enumerate(frames))}
out["log"] = records
print(json.dumps(out))
`;

describe('steadydancer_runtime pose drawing', () => {
  it('replaces the pack’s drawing once, checks the first frame, keeps the pack’s on a difference', async () => {
    const python = await hookPython();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sd-pose-'));
    try {
      writeFileSync(path.join(dir, 'driver.py'), DRIVER);
      const r = await run(python, [path.join(dir, 'driver.py'), HOOK, BENCH], { timeoutMs: 120_000 });
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      const out = JSON.parse(r.stdout) as Record<string, unknown>;
      expect(out).toMatchObject({
        installed_without_pack: false,
        installed: true,
        // the pack's function ran once, for the check; then only ours (3 frames, right size and pixels)
        same: { shape: [832, 480, 3], pack_calls: 1, matches_reference: true },
        pose_plan_to_pack: 1,
        // one differing value: the pack's image from the first frame on, and the pack's function for every frame
        differs: { pack_calls: 3, returned_pack: true },
      });
      expect(out.log).toEqual([
        ['INFO', 'steadydancer_runtime: fast pose drawing installed in ComfyUI-WanAnimatePreprocess'],
        ['INFO', "steadydancer_runtime: fast pose drawing matches the pack's on the first frame"],
        ['INFO', 'steadydancer_runtime: fast pose drawing installed in ComfyUI-WanAnimatePreprocess'],
        ['ERROR', "steadydancer_runtime: fast pose drawing differs from the pack's (1 values); using the pack's drawing"],
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 900_000);

  const comfy = process.env.COMFYUI_REAL_DIR;
  (comfy ? it : it.skip)(
    'draws exactly what the real pack draws (COMFYUI_REAL_DIR)',
    async () => {
      const python = await hookPython();
      const pack = path.join(comfy!, 'custom_nodes', 'ComfyUI-WanAnimatePreprocess');
      const r = await run(python, [BENCH, '--pack', pack, '--frames', '20'], { timeoutMs: 300_000 });
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      expect(JSON.parse(r.stdout)).toMatchObject({ identical: true, mismatches: 0 });
    },
    900_000,
  );
});
