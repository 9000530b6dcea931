import { readFileSync } from 'node:fs';
import { describe, it, expect } from '@jest/globals';
import {
  cardClass,
  chooseMemoryPlan,
  HEADROOM_GIB,
  LOW_VRAM_TABLE,
  modelGiB,
  outOfMemoryAdvice,
  RESIDENT_MIN_GIB,
  WEIGHT_GIB,
  type MemoryChoice,
} from '../../src/gpu';
import { MODEL_BLOCKS } from '../../src/workflow/build';
import { PRECISIONS, type Precision } from '../../src/workflow/manifest';

const plan = (over: Partial<MemoryChoice>) =>
  chooseMemoryPlan({ vram: 'auto', blockSwap: 'auto', precision: 'fp8', cardGiB: 15.6, ...over });

describe('LOW_VRAM_TABLE', () => {
  it('covers every precision in every row, with counts the model has', () => {
    for (const row of LOW_VRAM_TABLE) {
      expect(Object.keys(row.swap).sort()).toEqual([...PRECISIONS].sort());
      for (const cell of Object.values(row.swap)) {
        expect(Number.isInteger(cell.blocks) && cell.blocks >= 0 && cell.blocks <= MODEL_BLOCKS).toBe(true);
        expect(cell.basis).toMatch(/^(estimate|measured: bench\/results\/gpu-\S+\.json)$/);
      }
    }
  });

  it('a measured cell names a run of that precision and count, capped inside the row, whose jobs all completed', () => {
    let cells = 0;
    for (const [i, row] of LOW_VRAM_TABLE.entries()) {
      const floor = i === 0 ? 0 : LOW_VRAM_TABLE[i - 1]!.belowGiB;
      for (const p of PRECISIONS) {
        const basis = row.swap[p].basis;
        if (!basis.startsWith('measured: ')) continue;
        cells++;
        const run = JSON.parse(readFileSync(basis.slice('measured: '.length), 'utf8')) as {
          precision: string;
          engine: { blockSwap: number; memoryCapGiB: number };
          jobs: { status: string }[];
        };
        const cap = run.engine.memoryCapGiB;
        expect({
          card: row.card,
          p,
          precision: run.precision,
          blocks: run.engine.blockSwap,
          inRow: cap >= floor && cap < row.belowGiB,
        }).toEqual({
          card: row.card,
          p,
          precision: p,
          blocks: row.swap[p].blocks,
          inRow: true,
        });
        expect(run.jobs.length).toBeGreaterThan(1);
        expect(run.jobs.map((j) => j.status)).toEqual(run.jobs.map(() => 'COMPLETED'));
      }
    }
    expect(cells).toBeGreaterThan(0);
  });

  it('rows grow with the card, and a smaller card never swaps fewer blocks', () => {
    for (let i = 1; i < LOW_VRAM_TABLE.length; i++) {
      const [smaller, larger] = [LOW_VRAM_TABLE[i - 1]!, LOW_VRAM_TABLE[i]!];
      expect(smaller.belowGiB).toBeLessThan(larger.belowGiB);
      expect(smaller.nominalGiB).toBeLessThan(larger.nominalGiB);
      for (const p of PRECISIONS) expect(smaller.swap[p].blocks).toBeGreaterThanOrEqual(larger.swap[p].blocks);
    }
  });

  it('each count keeps the resident weights within the nominal card less the headroom, without swapping 2+ blocks too many', () => {
    for (const row of LOW_VRAM_TABLE) {
      for (const p of PRECISIONS) {
        const { block, rest } = WEIGHT_GIB[p];
        const budget = row.nominalGiB - HEADROOM_GIB;
        const needed = Math.max(0, MODEL_BLOCKS - Math.floor((budget - rest) / block));
        const { blocks } = row.swap[p];
        expect({ card: row.card, p, fits: rest + (MODEL_BLOCKS - blocks) * block <= budget }).toEqual({ card: row.card, p, fits: true });
        expect({ card: row.card, p, spare: blocks - needed <= 2 }).toEqual({ card: row.card, p, spare: true });
      }
    }
  });

  it('classifies cards by total memory; beyond the table every model fits without swapping', () => {
    const end = LOW_VRAM_TABLE.at(-1)!.belowGiB;
    for (const p of PRECISIONS) {
      expect({ p, fits: modelGiB(p) + HEADROOM_GIB <= end }).toEqual({ p, fits: true });
      expect(RESIDENT_MIN_GIB[p]).toBeGreaterThan(modelGiB(p) + HEADROOM_GIB);
    }
    expect(cardClass(15.6)?.card).toBe('16 GB');
    expect(cardClass(23.5)?.card).toBe('24 GB');
    expect(cardClass(31.4)?.card).toBe('32-40 GB');
    expect(cardClass(44)).toBeUndefined();
  });

  it('model sizes follow the file sizes: fp16 > fp8 > Q6_K > Q5_K_M > Q4_K_M', () => {
    const order: Precision[] = ['fp16', 'fp8', 'gguf-q6_k', 'gguf-q5_k_m', 'gguf-q4_k_m'];
    const sizes = order.map(modelGiB);
    expect([...sizes].sort((a, b) => b - a)).toEqual(sizes);
    expect(modelGiB('fp8')).toBeCloseTo(16.2, 1);
  });
});

describe('chooseMemoryPlan', () => {
  it('auto on a 16 GB card: offloaded, blocks swapped from the table, VAE tiled only above ~1.5 MP', () => {
    const p = plan({ precision: 'gguf-q5_k_m' });
    expect(p).toMatchObject({ mode: 'low', residentModel: false, blockSwap: 12 });
    expect(p.vaeTilingAbovePixels).toBeGreaterThan(480 * 832);
    expect(p.vaeTilingAbovePixels).toBeLessThan(1280 * 1280);
    expect(p.reasons.join('\n')).toMatch(/16 GB card class, gguf-q5_k_m \(measured: bench\/results\/gpu-turbo-81f-gguf-q5_k_m-cap16/);
  });

  it('auto on a 24 GB card: offloaded, no block swap for fp8, VAE never tiled within the size bounds', () => {
    const p = plan({ cardGiB: 23.6 });
    expect(p).toMatchObject({ mode: 'low', blockSwap: 0 });
    expect(p.vaeTilingAbovePixels).toBeGreaterThan(1280 * 1280);
    expect(plan({ cardGiB: 23.6, precision: 'fp16' }).blockSwap).toBe(20);
  });

  it('auto on a big card keeps the model resident and trades nothing', () => {
    expect(plan({ cardGiB: 79.2 })).toMatchObject({ mode: 'high', residentModel: true, blockSwap: 0, vaeTilingAbovePixels: null });
    expect(plan({ cardGiB: 47.4, precision: 'fp16' })).toMatchObject({ mode: 'low', blockSwap: 0 });
  });

  it("an unknown card keeps today's safe side: offloaded, nothing swapped or tiled", () => {
    expect(plan({ cardGiB: undefined })).toMatchObject({ mode: 'low', blockSwap: 0, vaeTilingAbovePixels: null });
  });

  it('VRAM_MODE wins over the card: high trades nothing, minimal swaps every block and tiles every frame', () => {
    expect(plan({ vram: 'high' })).toMatchObject({ mode: 'high', residentModel: true, blockSwap: 0, vaeTilingAbovePixels: null });
    expect(plan({ vram: 'low', cardGiB: 139.8 })).toMatchObject({ mode: 'low', residentModel: false, blockSwap: 0 });
    expect(plan({ vram: 'minimal', cardGiB: 139.8 })).toMatchObject({
      mode: 'minimal',
      residentModel: false,
      blockSwap: 40,
      vaeTilingAbovePixels: 0,
    });
  });

  it('BLOCK_SWAP wins over the table and the mode, and says so', () => {
    const p = plan({ blockSwap: 6 });
    expect(p.blockSwap).toBe(6);
    expect(p.reasons.at(-2)).toMatch(/BLOCK_SWAP=6/);
    expect(plan({ vram: 'minimal', blockSwap: 0 }).blockSwap).toBe(0);
    expect(plan({ vram: 'high', blockSwap: 10 })).toMatchObject({ residentModel: true, blockSwap: 10 });
  });
});

describe('outOfMemoryAdvice', () => {
  const job = { width: 480, height: 832, num_frames: 81 };

  it('names what the job ran with and the next step down, most useful first', () => {
    const p = plan({ precision: 'fp8' });
    const text = outOfMemoryAdvice({ plan: p, vram: 'auto', precision: 'fp8', cardGiB: 15.6, job });
    expect(text).toMatch(
      /^It ran with VRAM_MODE=auto \(memory mode low\) on a 15\.6 GiB card, fp8 weights, 20 of 40 blocks swapped, VAE untiled, 480x832, 81 frames\./,
    );
    expect(text.indexOf('VRAM_MODE=minimal')).toBeLessThan(text.indexOf('BLOCK_SWAP=30'));
    expect(text).toMatch(/gguf-q6_k or gguf-q5_k_m/);
    expect(text).toMatch(/fewer frames or a smaller width\/height\.$/);
  });

  it('from a resident model it first suggests offloading', () => {
    const text = outOfMemoryAdvice({ plan: plan({ vram: 'high' }), vram: 'high', precision: 'fp16', cardGiB: 47.4, job });
    expect(text).toMatch(/Try: set VRAM_MODE=low/);
    expect(text).not.toMatch(/BLOCK_SWAP=/);
  });

  it('at the bottom of the ladder only a smaller image or a smaller job is left', () => {
    const text = outOfMemoryAdvice({
      plan: plan({ vram: 'minimal' }),
      vram: 'minimal',
      precision: 'gguf-q4_k_m',
      cardGiB: 11.6,
      job: { ...job, num_frames: 321 },
    });
    expect(text).toMatch(/40 of 40 blocks swapped, VAE tiled/);
    expect(text).toMatch(/Try: send fewer frames or a smaller width\/height\.$/);
  });

  it('says when the card size is unknown (an external ComfyUI)', () => {
    expect(outOfMemoryAdvice({ plan: plan({ cardGiB: undefined }), vram: 'auto', precision: 'fp8', cardGiB: undefined, job })).toMatch(
      /on a card of unknown size/,
    );
  });
});
