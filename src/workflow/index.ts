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
export { buildPrompt, randomSeed, MAX_SEED } from './build';
export type { WorkflowParams } from './build';
export { MODEL_FILES, PRECISIONS, DEFAULT_PRECISION, modelFilesFor, modelFileLabel, isPrecision } from './manifest';
export type { ModelFile, Precision } from './manifest';
export { checkModels, assertVariantAvailable } from './models';
export type { ModelCheck, CheckModelsOptions } from './models';
export { checkPromptSchema, FILE_INPUTS } from './schema';
export type { ObjectInfo, NodeClassInfo, SchemaProblem, SchemaCheckOptions } from './schema';
