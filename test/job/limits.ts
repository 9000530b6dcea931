// Variant limits for job tests, shaped like src/workflow's registry entries.
import type { FieldLimits, VariantLimits } from '../../src/job/schema';
import { MAX_PROMPT_CHARS, MAX_SEED } from '../../src/workflow';

/** The workflow's own limits of the fields every variant shares. */
export const FIELD_LIMITS: FieldLimits = { maxPromptChars: MAX_PROMPT_CHARS, maxSeed: MAX_SEED };

const bounds = {
  width: { min: 256, max: 1280, multipleOf: 16 },
  height: { min: 256, max: 1280, multipleOf: 16 },
  num_frames: { min: 5, max: 321 },
  steps: { min: 1, max: 12 },
  cfg: { min: 1, max: 1 },
  shift: { min: 0, max: 20 },
  fps: { min: 8, max: 30 },
  crf: { min: 0, max: 51 },
};

export const TEST_VARIANTS: Record<'turbo' | 'quality', VariantLimits> = {
  turbo: {
    defaults: {
      width: 480,
      height: 832,
      num_frames: 81,
      fps: 16,
      steps: 4,
      cfg: 1,
      shift: 5,
      crf: 19,
      prompt: 'a person dancing',
      negative_prompt: '',
    },
    bounds,
  },
  quality: {
    defaults: {
      width: 576,
      height: 1024,
      num_frames: 81,
      fps: 16,
      steps: 40,
      cfg: 5,
      shift: 5,
      crf: 19,
      prompt: 'a person dancing',
      negative_prompt: 'blurry',
    },
    bounds: { ...bounds, steps: { min: 10, max: 80 }, cfg: { min: 1, max: 10 } },
  },
};
