// The GPU as the workflow needs it: the start-up self-check and the engine settings chosen from it.
export { runGpuCheck } from './self-check';
export type { GpuCheckOptions, GpuCheckResult } from './self-check';
export { parseGpuReport } from './report';
export type { GpuReport, ModeCheck } from './report';
export { chooseEngineSettings, cardMemoryGiB, UNCHECKED_ENGINE } from './engine-settings';
export type { EngineSettings, EngineChoice, AttentionPreference, AttentionMode } from './engine-settings';
export {
  chooseMemoryPlan,
  cardClass,
  outOfMemoryAdvice,
  LOW_VRAM_TABLE,
  modelGiB,
  HEADROOM_GIB,
  WEIGHT_GIB,
  RESIDENT_MIN_GIB,
  VAE_GIB_PER_MEGAPIXEL,
} from './memory-plan';
export type {
  BlockSwapPreference,
  CardClass,
  MemoryChoice,
  MemoryMode,
  MemoryPlan,
  OutOfMemoryContext,
  SwapCell,
  VramPreference,
} from './memory-plan';
