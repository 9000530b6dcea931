import { describe, it, expect } from '@jest/globals';
import { readFileSync } from 'node:fs';
import path from 'node:path';
// @ts-expect-error plain ESM script without types
import { loadResults, renderTable, replaceTable, START, END } from '../../bench/gpu/table.mjs';
// @ts-expect-error plain ESM script without types
import { summarizeTimings } from '../../bench/gpu/summarize.mjs';

const root = path.resolve(import.meta.dirname, '../..');

describe('GPU results and the README table', () => {
  it('the README holds exactly the table generated from bench/results/gpu-*.json', () => {
    const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
    const table = renderTable(loadResults());
    expect(replaceTable(readme, table)).toBe(readme);
  });

  it('every committed result has the fields the table and the issue ask for', () => {
    for (const r of loadResults()) {
      expect(r.environment.gpu).toBeTruthy();
      expect(r.environment.versions.torch).toBeTruthy();
      expect(r.jobs.length).toBeGreaterThan(0);
      for (const j of r.jobs) expect(typeof j.seconds).toBe('number');
    }
  });

  it('renders a row per result and refuses a README without markers', () => {
    const fake = {
      file: 'gpu-x.json',
      variant: 'turbo',
      frames: 81,
      width: 480,
      height: 832,
      precision: 'fp8',
      settings: { VRAM_MODE: 'high' },
      engine: { attention: 'sageattn', residentModel: true },
      environment: { gpu: 'NVIDIA H200, 580, 143771 MiB', versions: { torch: '2.11.0' } },
      jobs: [
        { kind: 'cold', status: 'COMPLETED', seconds: 40.04 },
        { kind: 'warm', status: 'COMPLETED', seconds: 18.26 },
      ],
      sampler: { s_per_step_steady: 2.456 },
      comfyui_boot_s: 12.3,
      prompts: [{ peak_vram_gib_torch: 30.2 }],
    };
    const table: string = renderTable([fake]);
    expect(table.split('\n')).toHaveLength(5);
    expect(table).toContain(
      '| turbo 81f 480×832 | fp8 | sageattn, resident | 40.0 | 18.3 | 2.46 | 12.3 | 30.2 / – | yes | NVIDIA H200, torch 2.11.0 | `gpu-x.json` |',
    );
    expect(() => replaceTable('no markers', table)).toThrow(/markers/);
    const failed = {
      ...fake,
      jobs: [{ kind: 'cold', status: 'FAILED', seconds: 182.74, error: 'OUT_OF_MEMORY: Out of GPU memory in node 50' }],
    };
    expect(renderTable([failed])).toContain('| sageattn, resident | OUT_OF_MEMORY after 182.7 | – |');
    const capped = {
      ...fake,
      file: 'gpu-y.json',
      settings: { STEADYDANCER_GPU_MEMORY_GB: '15.5' },
      engine: { attention: 'sdpa', residentModel: false, blockSwap: 12, vaeTilingAbovePixels: 300_000 },
    };
    expect(renderTable([capped])).toContain('| sdpa, offload, 12/40 blocks swapped, VAE tiled, STEADYDANCER_GPU_MEMORY_GB=15.5 |');
    expect(renderTable([{ ...capped, engine: { ...capped.engine, blockSwap: 0, vaeTilingAbovePixels: null } }])).toContain(
      '| sdpa, offload, STEADYDANCER_GPU_MEMORY_GB=15.5 |',
    );
    expect(START).not.toBe(END);
  });
});

describe('summarizeTimings', () => {
  it('splits prompts, times nodes and takes steady-state seconds per step after the first step', () => {
    const lines = [
      { ev: 'prompt_start', prompt_id: 'p1', t: 100 },
      { ev: 'node', prompt_id: 'p1', node: '22', class: 'WanVideoTextEncodeCached', t0: 100, t1: 104.5, cached: false, peak_bytes: 1 },
      { ev: 'progress', node: '50', value: 1, total: 4, t: 112 },
      { ev: 'progress', node: '50', value: 1, total: 4, t: 112.01 },
      { ev: 'progress', node: '50', value: 2, total: 4, t: 114.5 },
      { ev: 'progress', node: '50', value: 3, total: 4, t: 117.0 },
      { ev: 'progress', node: '50', value: 4, total: 4, t: 119.4 },
      { ev: 'node', prompt_id: 'p1', node: '50', class: 'WanVideoSampler', t0: 105, t1: 120, cached: false, peak_bytes: 2 },
      { ev: 'node', prompt_id: 'p1', node: '30', class: 'LoadImage', t0: 120, t1: 120, cached: true, peak_bytes: 2 },
      { ev: 'prompt_end', prompt_id: 'p1', t: 121, peak_bytes: 3 * 1024 ** 3, peak_reserved_bytes: 3.5 * 1024 ** 3 },
    ]
      .map((r) => JSON.stringify(r))
      .join('\n');
    const s = summarizeTimings(lines, 1);
    expect(s.prompts).toHaveLength(1);
    expect(s.prompts_complete).toBe(true);
    expect(s.prompts[0].seconds).toBe(21);
    expect(s.prompts[0].peak_vram_gib_torch).toBe(3);
    expect(s.prompts[0].peak_reserved_gib_torch).toBe(3.5);
    expect(s.prompts[0].nodes.map((n: { class: string }) => n.class)).toEqual(['WanVideoTextEncodeCached', 'WanVideoSampler']);
    expect(s.prompts[0].sampler.steps).toEqual([7, 2.5, 2.5, 2.4]);
    expect(s.sampler.s_per_step_steady).toBe(2.5);
  });

  it('leaves the profiled prompt out of the steady-state step time, and marks it', () => {
    const prompt = (id: string, t: number, step: number) => [
      { ev: 'prompt_start', prompt_id: id, t },
      ...[1, 2, 3].map((value) => ({ ev: 'progress', node: '50', value, total: 3, t: t + 1 + value * step })),
      { ev: 'node', prompt_id: id, node: '50', class: 'WanVideoSampler', t0: t, t1: t + 1 + 3 * step, cached: false, peak_bytes: 1 },
      { ev: 'prompt_end', prompt_id: id, t: t + 2 + 3 * step, peak_bytes: 1 },
    ];
    const lines = [...prompt('p1', 0, 2), ...prompt('p2', 100, 9)].map((r) => JSON.stringify(r)).join('\n');
    const profiled = summarizeTimings(lines, 2, 2);
    expect(profiled.prompts.map((p: { profiled?: boolean }) => p.profiled ?? false)).toEqual([false, true]);
    expect(profiled.sampler).toEqual({ s_per_step_steady: 2, steps_counted: 2 });
    // Without the mark its slow steps count.
    expect(summarizeTimings(lines, 2).sampler).toEqual({ s_per_step_steady: 5.5, steps_counted: 4 });
  });
});
