// SteadyDancer workflows: variant registry, prompt builder, model manifest and checks.
export type { ApiNode, ApiPrompt, NodeLink } from './types';
export {
  VARIANTS,
  VARIANT_NAMES,
  DEFAULT_VARIANT,
  NODES,
  CONTEXT_WINDOW_FRAMES,
  WAN_NEGATIVE_PROMPT,
  allRequiredNodeClasses,
  isVariantName,
} from './variants';
export type { VariantName, VariantSpec, VariantDefaults, VariantBounds, Range } from './variants';
export { buildPrompt, randomSeed, unsupportedVariant, MAX_SEED, MAX_PROMPT_CHARS, MODEL_BLOCKS } from './build';
export type { WorkflowParams, EngineParams } from './build';
export { MODEL_FILES, DEFAULT_PRECISION, PRECISIONS, isPrecision, modelFilesFor, modelFileLabel } from './manifest';
export type { ModelFile, Precision } from './manifest';
export { checkModels } from './models';
export type { ModelCheck, CheckModelsOptions } from './models';
