// The GPU benchmark's plan files (bench/gpu/plans/*.txt, one bench/gpu/run.mjs call per line, run by
// bench/gpu/device.sh --plan) name real precisions, real settings and the card class they rehearse.
import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ENV_VARS } from '../../src/config';
import { cardClass } from '../../src/gpu';
import { PRECISIONS } from '../../src/workflow/manifest';
import { VARIANTS, isVariantName } from '../../src/workflow/variants';

const dir = path.resolve(import.meta.dirname, '../../bench/gpu/plans');
// run.mjs's options (bench/gpu/run.mjs parseArgs); --out and --work come from device.sh.
const RUN_OPTIONS = {
  variant: { type: 'string' },
  frames: { type: 'string' },
  width: { type: 'string' },
  height: { type: 'string' },
  precision: { type: 'string' },
  warm: { type: 'string' },
  arm: { type: 'string', multiple: true },
  label: { type: 'string' },
  'job-timeout-s': { type: 'string' },
  profile: { type: 'boolean' },
} as const;
// Set for ComfyUI's process by the worker's environment, read by docker/comfyui/steadydancer_runtime (and
// PYTORCH_CUDA_ALLOC_CONF by PyTorch there).
const RUNTIME_VARS = [
  'STEADYDANCER_GPU_MEMORY_GB',
  'STEADYDANCER_GC_FREEZE',
  'STEADYDANCER_POSE_SESSIONS',
  'STEADYDANCER_POSE_DRAWING',
  'STEADYDANCER_PARALLEL_RESIZE',
  'STEADYDANCER_WEIGHT_CACHE',
  'PYTORCH_CUDA_ALLOC_CONF',
];
/** What each plan rehearses: the card class its memory cap must fall in (null: the whole card, no cap). */
const CARD_OF_PLAN: Record<string, string | null> = {
  'lowvram-16gb.txt': '16 GB',
  'lowvram-16gb-long.txt': '16 GB',
  'lowvram-24gb.txt': '24 GB',
  'turbo-speed.txt': null,
  'turbo-speed-161.txt': null,
  'variants.txt': null,
  'turbo-fp8.txt': null,
  'profile.txt': null,
  'exact-speed.txt': null,
};

function lines(file: string): string[][] {
  return readFileSync(path.join(dir, file), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(/\s+/));
}

describe('bench/gpu/plans', () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.txt'));

  it('are the ones this test knows, each with runs', () => {
    expect(files.sort()).toEqual(Object.keys(CARD_OF_PLAN).sort());
    for (const f of files) expect(lines(f).length).toBeGreaterThan(0);
  });

  it.each(Object.keys(CARD_OF_PLAN))('%s: run.mjs options, manifest precisions, worker settings, the card class it names', (file) => {
    for (const args of lines(file)) {
      const { values } = parseArgs({ args, options: RUN_OPTIONS, strict: true });
      expect(PRECISIONS).toContain(values.precision);
      const variant = values.variant ?? 'turbo';
      expect(isVariantName(variant)).toBe(true);
      if (!isVariantName(variant)) continue;
      const frames = Number(values.frames);
      const bounds = VARIANTS[variant].bounds.num_frames;
      expect(frames >= bounds.min && frames <= bounds.max && (frames - 1) % 4 === 0).toBe(true);
      expect(values.arm?.length).toBeGreaterThan(0);
      for (const arm of values.arm ?? []) {
        const [name, settings = ''] = arm.split(/:(.*)/s);
        expect(name).toMatch(/^[a-z0-9-]+$/);
        const env = Object.fromEntries(
          settings
            .split(',')
            .filter(Boolean)
            .map((kv) => kv.split('=') as [string, string]),
        );
        for (const key of Object.keys(env)) expect([...ENV_VARS, ...RUNTIME_VARS]).toContain(key);
        const card = env['STEADYDANCER_GPU_MEMORY_GB'] === undefined ? null : cardClass(Number(env['STEADYDANCER_GPU_MEMORY_GB']))?.card;
        expect({ file, arm: name, card }).toEqual({ file, arm: name, card: CARD_OF_PLAN[file] });
      }
    }
  });
});
