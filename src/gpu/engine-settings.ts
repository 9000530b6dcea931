// How the workflow runs on this card, decided once at start from the GPU check:
// - attention: SageAttention only where it was just shown to compute attention on this GPU (a build
//   can import, run and return uninitialised memory); otherwise exact SDPA.
// - resident model: keep the diffusion model on the GPU between jobs where the card holds it with
//   room to spare (saves ~4 s a job of moving 16-30 GB); offload after each job elsewhere.
// Both are exact choices: they change speed and memory, never the numbers of a job.
import type { GpuReport } from './report';

export type AttentionPreference = 'auto' | 'sageattn' | 'sdpa';
export type VramPreference = 'auto' | 'high' | 'low';
export type AttentionMode = 'sageattn' | 'sdpa';

export interface EngineSettings {
  readonly attention: AttentionMode;
  readonly residentModel: boolean;
  /** One line per decision, for the start-up log. */
  readonly reasons: readonly string[];
}

const GIB = 1024 ** 3;
/**
 * Smallest card (total memory) on which the model stays resident, per diffusion-model precision:
 * the resident model plus the text encoder loaded beside it for a new prompt, the sampler's
 * activations at 81 frames 480x832 and the VAE decode (bench/results: peak with a resident model).
 */
export const RESIDENT_MIN_GIB = { fp8: 44, fp16: 75 } as const;

export interface EngineChoice {
  attention: AttentionPreference;
  vram: VramPreference;
  precision: keyof typeof RESIDENT_MIN_GIB;
  /** The check's report; undefined when it could not run (reason in checkError). */
  report: GpuReport | undefined;
  checkError?: string;
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

  let residentModel: boolean;
  if (c.vram !== 'auto') {
    residentModel = c.vram === 'high';
    reasons.push(`${residentModel ? 'resident model' : 'model offloaded after each job'}: VRAM_MODE=${c.vram}`);
  } else if (!c.report) {
    residentModel = false;
    reasons.push('model offloaded after each job: card memory unknown (the GPU check did not run)');
  } else {
    const gib = c.report.total_memory_bytes / GIB;
    const need = RESIDENT_MIN_GIB[c.precision];
    residentModel = gib >= need;
    reasons.push(
      residentModel
        ? `resident model: ${gib.toFixed(0)} GiB card >= ${need} GiB for ${c.precision}`
        : `model offloaded after each job: ${gib.toFixed(0)} GiB card < ${need} GiB for ${c.precision} (set VRAM_MODE=high to override)`,
    );
  }
  return { attention, residentModel, reasons };
}

/** What a job uses before the check has settled or where it cannot run: the template's safe side. */
export const UNCHECKED_ENGINE: EngineSettings = { attention: 'sdpa', residentModel: false, reasons: ['not checked yet'] };
