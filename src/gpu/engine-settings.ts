// How the workflow runs on this card, decided once at start from the GPU check:
// - attention: SageAttention only where it was just shown to compute attention on this GPU (a build
//   can import, run and return uninitialised memory); otherwise exact SDPA.
// - memory: resident model, offload, block swap and VAE tiling from the card's memory (memory-plan.ts).
// - compile: torch.compile of the transformer blocks, only when the operator asks (TORCH_COMPILE).
// Attention and memory settings change speed and memory, not a job's numbers (VAE tiling only where an
// untiled pass would not fit: see memory-plan.ts); compiled kernels round differently, hence opt-in.
import type { Precision } from '../workflow/manifest';
import { chooseMemoryPlan, type BlockSwapPreference, type MemoryMode, type VramPreference } from './memory-plan';
import type { GpuReport } from './report';

/** ATTENTION_MODE's values (src/config.ts validates against this list). */
export const ATTENTION_PREFERENCES = ['auto', 'sageattn', 'sdpa'] as const;
export type AttentionPreference = (typeof ATTENTION_PREFERENCES)[number];
export type AttentionMode = 'sageattn' | 'sdpa';

export interface EngineSettings {
  readonly attention: AttentionMode;
  readonly residentModel: boolean;
  /** Transformer blocks kept in CPU memory and swapped in per step; 0 = none. */
  readonly blockSwap: number;
  /** Frame area above which VAE encode/decode run tiled; null = never. */
  readonly vaeTilingAbovePixels: number | null;
  readonly memoryMode: MemoryMode;
  readonly compile: boolean;
  /**
   * Why this card cannot run fp8 matrix multiplies (torch._scaled_mm needs compute capability 8.9+: Ada,
   * Hopper); undefined when it can, or when no check ran (ComfyUI then reports it).
   */
  readonly fp8MatmulUnsupported?: string;
  /** Card memory the settings were chosen for (the process cap when set), GiB; undefined when unknown. */
  readonly cardGiB: number | undefined;
  /** One line per decision, for the start-up log. */
  readonly reasons: readonly string[];
}

const GIB = 1024 ** 3;

export interface EngineChoice {
  attention: AttentionPreference;
  vram: VramPreference;
  blockSwap?: BlockSwapPreference;
  precision: Precision;
  /** TORCH_COMPILE; default off. */
  compile?: boolean;
  /** The check's report; undefined when it could not run (reason in checkError). */
  report: GpuReport | undefined;
  checkError?: string;
}

/** The memory the process may use: the cap the check applied (STEADYDANCER_GPU_MEMORY_GB), else the card's. */
export function cardMemoryGiB(report: GpuReport | undefined): number | undefined {
  if (!report) return undefined;
  return (report.memory_cap_bytes ?? report.total_memory_bytes) / GIB;
}

export function chooseEngineSettings(c: EngineChoice): EngineSettings {
  const reasons: string[] = [];
  const sage = c.report?.modes['sageattn'];
  let attention: AttentionMode;
  if (c.attention === 'sdpa') {
    attention = 'sdpa';
    reasons.push('attention sdpa: ATTENTION_MODE=sdpa');
  } else if (sage?.ok) {
    attention = 'sageattn';
    reasons.push(`attention sageattn: agrees with fp32 attention on ${c.report?.gpu} (cosine ${sage.cosine})`);
  } else if (c.attention === 'sageattn' && !c.report) {
    // An operator's word for a GPU the worker cannot check (an external ComfyUI on another machine).
    attention = 'sageattn';
    reasons.push(`attention sageattn: ATTENTION_MODE=sageattn, unchecked (${c.checkError ?? 'no check'})`);
  } else {
    attention = 'sdpa';
    const why = !c.report
      ? `the GPU check did not run (${c.checkError ?? 'unknown'})`
      : sage
        ? (sage.error ?? `its output disagrees with fp32 attention (cosine ${sage.cosine}, rel_l2 ${sage.rel_l2})`)
        : 'not checked';
    reasons.push(`attention sdpa: SageAttention not used: ${why}`);
  }

  const cardGiB = cardMemoryGiB(c.report);
  const memory = chooseMemoryPlan({ vram: c.vram, blockSwap: c.blockSwap ?? 'auto', precision: c.precision, cardGiB });
  return {
    attention,
    residentModel: memory.residentModel,
    blockSwap: memory.blockSwap,
    vaeTilingAbovePixels: memory.vaeTilingAbovePixels,
    memoryMode: memory.mode,
    compile: c.compile ?? false,
    ...fp8Matmul(c.report),
    cardGiB,
    reasons: [...reasons, ...memory.reasons, c.compile ? 'torch.compile: on (TORCH_COMPILE)' : 'torch.compile: off'],
  };
}

/** fp8 matrix multiplies (torch._scaled_mm, the turbo-fp8 variant) need compute capability 8.9 or newer. */
export const FP8_MATMUL_MIN_CAPABILITY = 8.9;

function fp8Matmul(report: GpuReport | undefined): { fp8MatmulUnsupported?: string } {
  if (!report || Number(report.capability) >= FP8_MATMUL_MIN_CAPABILITY) return {};
  return {
    fp8MatmulUnsupported: `${report.gpu} has compute capability ${report.capability}; fp8 matrix multiplies need ${FP8_MATMUL_MIN_CAPABILITY} or newer (Ada, Hopper)`,
  };
}

/** What a job uses before the check has settled or where it cannot run: the template's safe side. */
export const UNCHECKED_ENGINE: EngineSettings = {
  attention: 'sdpa',
  residentModel: false,
  blockSwap: 0,
  vaeTilingAbovePixels: null,
  memoryMode: 'low',
  compile: false,
  cardGiB: undefined,
  reasons: ['not checked yet'],
};
