// The ComfyUI hook's start-up steps (docker/comfyui/steadydancer_runtime/__init__.py) under a stand-in
// `execution` module: they run once, when the first node executes (every pack is loaded by then), a
// failing one is logged without failing the node, and the garbage-collection freeze (gc_freeze.py)
// takes the start-up objects out of the collector's sight unless STEADYDANCER_GC_FREEZE=off.
import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, run } from '../image/helpers';

const FAKE_EXECUTION = `
async def execute(server, dynprompt, caches, current_item, *args, **kwargs):
    return ("ran", current_item)
`;

const DRIVER = `
import asyncio, gc, json, sys
import execution
import steadydancer_runtime as hooks

def boom():
    raise RuntimeError("no such pack")

async def main():
    out = {"frozen_at_import": gc.get_freeze_count()}
    out["first"] = list(await execution.execute(None, None, None, "10"))
    out["frozen_after_first"] = gc.get_freeze_count()
    garbage = []
    garbage.append(garbage)  # a cycle made after the freeze: still collected
    del garbage
    out["collected_after"] = gc.collect()
    out["second"] = list(await execution.execute(None, None, None, "50"))
    out["frozen_after_second"] = gc.get_freeze_count()
    hooks._before_first_node([("failing step", boom)])
    out["after_failing_step"] = list(await execution.execute(None, None, None, "51"))
    print(json.dumps(out))

asyncio.run(main())
`;

async function runHooks(env: Record<string, string>) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sd-hooks-'));
  try {
    writeFileSync(path.join(dir, 'execution.py'), FAKE_EXECUTION);
    writeFileSync(path.join(dir, 'driver.py'), DRIVER);
    const r = await run('python3', [path.join(dir, 'driver.py')], {
      env: {
        ...process.env,
        STEADYDANCER_POSE_DRAWING: 'pack',
        STEADYDANCER_PARALLEL_RESIZE: 'off',
        ...env,
        PYTHONPATH: [dir, path.join(ROOT, 'docker/comfyui')].join(path.delimiter),
      },
    });
    expect(r.code).toBe(0);
    return { out: JSON.parse(r.stdout.trim().split('\n').at(-1)!), stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('steadydancer_runtime start-up steps', () => {
  it('freezes the start-up objects once, at the first node, and still collects newer cycles', async () => {
    const { out } = await runHooks({});
    expect(out.frozen_at_import).toBe(0);
    expect(out.first).toEqual(['ran', '10']);
    expect(out.frozen_after_first).toBeGreaterThan(1000);
    expect(out.collected_after).toBeGreaterThan(0);
    expect(out.frozen_after_second).toBe(out.frozen_after_first);
  });

  it('leaves the collector alone with STEADYDANCER_GC_FREEZE=off', async () => {
    const { out } = await runHooks({ STEADYDANCER_GC_FREEZE: 'off' });
    expect([out.frozen_after_first, out.frozen_after_second]).toEqual([0, 0]);
  });

  it('installs the prepared-weight cache at the first node unless STEADYDANCER_WEIGHT_CACHE=off', async () => {
    // No torch or wrapper in this stand-in ComfyUI: the step runs, cannot install and says so, by name.
    const on = await runHooks({});
    expect(on.stderr).toMatch(/steadydancer_runtime: prepared weight cache skipped: /);
    const off = await runHooks({ STEADYDANCER_WEIGHT_CACHE: 'off' });
    expect(off.stderr).not.toMatch(/prepared weight cache/);
    expect(off.out.first).toEqual(['ran', '10']);
  });

  it('logs a failing step under its name and still runs the node', async () => {
    const { out, stderr } = await runHooks({});
    expect(out.after_failing_step).toEqual(['ran', '51']);
    expect(stderr).toMatch(/steadydancer_runtime: failing step skipped: no such pack/);
  });
});
