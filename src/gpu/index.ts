// The GPU as the workflow needs it: the start-up self-check and the engine settings chosen from it.
export { runGpuCheck } from './self-check';
export type { GpuCheckOptions, GpuCheckResult } from './self-check';
export { parseGpuReport } from './report';
export type { GpuReport, ModeCheck } from './report';
export { chooseEngineSettings, UNCHECKED_ENGINE, RESIDENT_MIN_GIB } from './engine-settings';
export type { EngineSettings, EngineChoice, AttentionPreference, VramPreference, AttentionMode } from './engine-settings';
