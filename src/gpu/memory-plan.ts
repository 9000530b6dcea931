// How the workflow fits the card's memory: keep the diffusion model resident, offload it between jobs,
// swap transformer blocks in from CPU memory every step (the wrapper's WanVideoBlockSwap), tile the VAE.
// All of these move memory and time, never a job's numbers, except VAE tiling, which can leave faint seams
// at tile borders and is therefore used only where an untiled encode/decode would not fit.
// Decided once at start from the card's total memory (or the process cap, STEADYDANCER_GPU_MEMORY_GB).
import { MODEL_BLOCKS } from '../workflow/build';
import type { Precision } from '../workflow/manifest';

/** VRAM_MODE's values (src/config.ts validates against this list). */
export const VRAM_PREFERENCES = ['auto', 'high', 'low', 'minimal'] as const;
export type VramPreference = (typeof VRAM_PREFERENCES)[number];
/** `auto`: the table below; a number: that many blocks, whatever the card (BLOCK_SWAP). */
export type BlockSwapPreference = 'auto' | number;
export type MemoryMode = 'high' | 'low' | 'minimal';

/**
 * Smallest card (total memory, GiB) on which the model stays resident, per diffusion-model precision:
 * the resident model plus the text encoder loaded beside it for a new prompt (10.6 GiB), the sampler's
 * activations at 81 frames 480x832 and the VAE decode. fp8 and fp16: bench/results (peak with a resident
 * model); the GGUF rows are fp8's threshold less the smaller files (estimates until measured).
 */
export const RESIDENT_MIN_GIB: Readonly<Record<Precision, number>> = {
  fp8: 44,
  fp16: 75,
  'gguf-q4_k_m': 39,
  'gguf-q5_k_m': 40,
  'gguf-q6_k': 41,
};

export interface SwapCell {
  readonly blocks: number;
  /** `estimate` until a capped run of bench/gpu measured it; then the result file that did. */
  readonly basis: string;
}

export interface CardClass {
  /** The card size this row is for, as people name it. */
  readonly card: string;
  /** That size in GiB, which the swap counts are derived for (test/gpu/memory-plan.test.ts checks them). */
  readonly nominalGiB: number;
  /** The row applies to cards (or caps) below this many GiB of total memory. */
  readonly belowGiB: number;
  readonly swap: Readonly<Record<Precision, SwapCell>>;
}

/**
 * GiB each precision puts on the GPU: per transformer block (its share of the 0.67 GiB distill LoRA
 * included) and outside the 40 blocks (embeddings, head; 0.24 G parameters in 16-bit). 16.15 G of the 16.40 G
 * parameters are in the blocks; GGUF sizes follow ComfyUI-GGUF's rules for Wan (Q4_K_M/Q5_K_M: attention v
 * and ffn.2 in Q6_K; bench/gpu/synthetic/gguf_layout.py writes that layout).
 */
export const WEIGHT_GIB: Readonly<Record<Precision, { readonly block: number; readonly rest: number }>> = {
  fp8: { block: 0.393, rest: 0.46 },
  fp16: { block: 0.769, rest: 0.46 },
  'gguf-q4_k_m': { block: 0.258, rest: 0.46 },
  'gguf-q5_k_m': { block: 0.291, rest: 0.46 },
  'gguf-q6_k': { block: 0.325, rest: 0.46 },
};

/** Card memory the weights leave to the rest at 81 frames 480x832: activations, CUDA context, VAE (estimate). */
export const HEADROOM_GIB = 7;

const estimate = (blocks: number): SwapCell => ({ blocks, basis: 'estimate' });
/** A count a capped H200 run of turbo 81 frames 480x832 completed with (cold and warm job). */
const measured = (blocks: number, result: string): SwapCell => ({ blocks, basis: `measured: bench/results/${result}` });

/**
 * Blocks to swap per card class and precision: THE table (bench/gpu/plans/lowvram-*.txt measure it).
 * Each count keeps the GPU-resident weights (rest + unswapped blocks, WEIGHT_GIB) within the nominal card
 * less HEADROOM_GIB, rounded up to an even count. Cards at or above the last row swap nothing.
 */
export const LOW_VRAM_TABLE: readonly CardClass[] = [
  {
    card: '16 GB',
    nominalGiB: 16,
    belowGiB: 20,
    // Measured under a 15.5 GiB cap (16 GiB less the CUDA context): peak reservation 14.6 GiB (fp8) and
    // 15.2 GiB (Q5_K_M: the GGUF path dequantizes each layer into a temporary, so it peaks higher).
    swap: {
      fp8: measured(20, 'gpu-turbo-81f-fp8-cap16-auto-sdpa.json'),
      fp16: estimate(30),
      'gguf-q4_k_m': estimate(8),
      'gguf-q5_k_m': measured(12, 'gpu-turbo-81f-gguf-q5_k_m-cap16-auto-sdpa.json'),
      'gguf-q6_k': estimate(14),
    },
  },
  {
    card: '24 GB',
    nominalGiB: 24,
    belowGiB: 30,
    // Measured under a 23.5 GiB cap: peak reservation 22.6 GiB (fp8) and 18.3 GiB (Q5_K_M), model offloaded
    // between jobs, nothing swapped.
    swap: {
      fp8: measured(0, 'gpu-turbo-81f-fp8-cap24-auto-sdpa.json'),
      fp16: estimate(20),
      'gguf-q4_k_m': estimate(0),
      'gguf-q5_k_m': measured(0, 'gpu-turbo-81f-gguf-q5_k_m-cap24-auto-sdpa.json'),
      'gguf-q6_k': estimate(0),
    },
  },
  {
    card: '32-40 GB',
    nominalGiB: 32,
    belowGiB: 44,
    swap: {
      fp8: estimate(0),
      fp16: estimate(10),
      'gguf-q4_k_m': estimate(0),
      'gguf-q5_k_m': estimate(0),
      'gguf-q6_k': estimate(0),
    },
  },
];

/**
 * VAE encode/decode memory per megapixel of frame (estimate: 4.4 GB on the card for 480x832, CUDA context
 * included, in the first H200 run). It does not grow with the frame count: the wrapper's VAE works through
 * the video in chunks.
 */
export const VAE_GIB_PER_MEGAPIXEL = 9;
/** Card memory a VAE pass leaves to the rest (context, the VAE itself, latents), GiB. */
const VAE_RESERVE_GIB = 2;

/** The diffusion model's size on the GPU when all of it is there, GiB. */
export function modelGiB(precision: Precision): number {
  const w = WEIGHT_GIB[precision];
  return w.rest + MODEL_BLOCKS * w.block;
}

export interface MemoryChoice {
  vram: VramPreference;
  blockSwap: BlockSwapPreference;
  precision: Precision;
  /** Card memory in GiB (the process cap when one is set); undefined when the GPU check did not run. */
  cardGiB: number | undefined;
}

export interface MemoryPlan {
  readonly mode: MemoryMode;
  readonly residentModel: boolean;
  /** Blocks (of MODEL_BLOCKS) kept in CPU memory and moved in for each step; 0 = no block swap. */
  readonly blockSwap: number;
  /** Frame area (width x height) above which VAE encode/decode run tiled; null = never tiled. */
  readonly vaeTilingAbovePixels: number | null;
  readonly reasons: readonly string[];
}

/** The card class a card of `gib` falls in; undefined for cards at or above the table. */
export function cardClass(gib: number): CardClass | undefined {
  return LOW_VRAM_TABLE.find((row) => gib < row.belowGiB);
}

/** Largest frame area an untiled VAE pass fits in, with the model off the card (offloaded during VAE work). */
function vaeThreshold(cardGiB: number): number {
  return Math.max(0, Math.floor(((cardGiB - VAE_RESERVE_GIB) / VAE_GIB_PER_MEGAPIXEL) * 1e6));
}

function gib(n: number): string {
  return `${n.toFixed(n < 100 ? 1 : 0)} GiB`;
}

export function chooseMemoryPlan(c: MemoryChoice): MemoryPlan {
  const reasons: string[] = [];
  let mode: MemoryMode;
  if (c.vram !== 'auto') {
    mode = c.vram;
    reasons.push(`memory mode ${mode}: VRAM_MODE=${c.vram}`);
  } else if (c.cardGiB === undefined) {
    mode = 'low';
    reasons.push('memory mode low (model offloaded after each job): card memory unknown (the GPU check did not run)');
  } else {
    const need = RESIDENT_MIN_GIB[c.precision];
    mode = c.cardGiB >= need ? 'high' : 'low';
    reasons.push(
      mode === 'high'
        ? `memory mode high (resident model): ${gib(c.cardGiB)} card >= ${need} GiB for ${c.precision}`
        : `memory mode low (model offloaded after each job): ${gib(c.cardGiB)} card < ${need} GiB for ${c.precision} (VRAM_MODE=high overrides)`,
    );
  }

  let blockSwap = 0;
  if (mode === 'minimal') {
    blockSwap = MODEL_BLOCKS;
    reasons.push(`block swap ${MODEL_BLOCKS} of ${MODEL_BLOCKS}: VRAM_MODE=minimal`);
  } else if (mode === 'low' && c.cardGiB !== undefined) {
    const row = cardClass(c.cardGiB);
    const cell = row?.swap[c.precision];
    if (row && cell && cell.blocks > 0) {
      blockSwap = cell.blocks;
      reasons.push(`block swap ${cell.blocks} of ${MODEL_BLOCKS}: ${row.card} card class, ${c.precision} (${cell.basis})`);
    }
  }
  if (c.blockSwap !== 'auto') {
    blockSwap = c.blockSwap;
    reasons.push(`block swap ${blockSwap} of ${MODEL_BLOCKS}: BLOCK_SWAP=${c.blockSwap}`);
  }

  let vaeTilingAbovePixels: number | null = null;
  if (mode === 'minimal') {
    vaeTilingAbovePixels = 0;
    reasons.push('VAE tiled: VRAM_MODE=minimal');
  } else if (mode === 'low' && c.cardGiB !== undefined) {
    vaeTilingAbovePixels = vaeThreshold(c.cardGiB);
    reasons.push(`VAE tiled above ${(vaeTilingAbovePixels / 1e6).toFixed(2)} MP per frame (estimate: ${VAE_GIB_PER_MEGAPIXEL} GiB per MP)`);
  }
  return { mode, residentModel: mode === 'high', blockSwap, vaeTilingAbovePixels, reasons };
}

export interface OutOfMemoryContext {
  plan: Pick<MemoryPlan, 'mode' | 'blockSwap' | 'vaeTilingAbovePixels'>;
  vram: VramPreference;
  precision: Precision;
  cardGiB: number | undefined;
  job: { width: number; height: number; num_frames: number };
}

/**
 * What to try after OUT_OF_MEMORY, from the settings the job ran with: the next memory mode, then more
 * swapped blocks, a smaller GGUF image, a smaller job. One sentence per suggestion, most useful first.
 */
export function outOfMemoryAdvice(c: OutOfMemoryContext): string {
  const { plan, job } = c;
  const pixels = job.width * job.height;
  const tiled = plan.vaeTilingAbovePixels !== null && pixels > plan.vaeTilingAbovePixels;
  const card = c.cardGiB === undefined ? 'a card of unknown size' : `a ${gib(c.cardGiB)} card`;
  const ran =
    `It ran with VRAM_MODE=${c.vram} (memory mode ${plan.mode}) on ${card}, ${c.precision} weights, ` +
    `${plan.blockSwap} of ${MODEL_BLOCKS} blocks swapped, VAE ${tiled ? 'tiled' : 'untiled'}, ` +
    `${job.width}x${job.height}, ${job.num_frames} frames.`;
  const tries: string[] = [];
  if (plan.mode === 'high') tries.push('set VRAM_MODE=low (offload the model between jobs, block swap from the card table)');
  if (plan.mode !== 'minimal') tries.push(`set VRAM_MODE=minimal (all ${MODEL_BLOCKS} blocks swapped, VAE tiled: slowest, smallest)`);
  if (plan.blockSwap < MODEL_BLOCKS && plan.mode !== 'high') {
    tries.push(`set BLOCK_SWAP=${Math.min(MODEL_BLOCKS, plan.blockSwap + 10)} (more blocks in CPU memory)`);
  }
  const smaller = (Object.keys(WEIGHT_GIB) as Precision[])
    .filter((p) => modelGiB(p) < modelGiB(c.precision))
    .sort((a, b) => modelGiB(b) - modelGiB(a))
    .slice(0, 2);
  if (smaller.length > 0) tries.push(`use an image with smaller weights (${smaller.join(' or ')}: README, Images)`);
  tries.push('send fewer frames or a smaller width/height');
  return `${ran} Try: ${tries.join('; ')}.`;
}
