// Fills a variant's template from validated job values. Pure: no I/O, no clock, no randomness
// (the seed comes in; randomSeed makes one when the job has none). The job schema (src/job/schema.ts)
// validates the input; the checks here are the builder's own preconditions, from the same bounds,
// so it stays safe when used alone (and file names are checked only here).
import { WorkerError } from '../lib/errors';
import { DEFAULT_PRECISION, MODEL_FILES, type Precision } from './manifest';
import { CONTEXT_WINDOW_FRAMES, NODES, VARIANTS, isVariantName, type Range, type VariantName } from './variants';
import type { ApiNode, ApiPrompt } from './types';

export interface WorkflowParams {
  variant: VariantName;
  width: number;
  height: number;
  num_frames: number;
  fps: number;
  seed: number;
  prompt: string;
  negative_prompt: string;
  steps: number;
  cfg: number;
  shift: number;
  crf: number;
  /** Name of the reference image in ComfyUI's input folder (as /upload/image returned it). */
  referenceImageName: string;
  /** Name of the pose video in ComfyUI's input folder. */
  poseVideoName: string;
  /** Unique per job, so ComfyUI's cache never replays another job's output (e.g. `sd_<jobId>`). */
  filenamePrefix: string;
  /** Weights the image carries; picks the diffusion model file. Default fp8. */
  precision?: Precision;
  /** How the model runs on this card (chosen at start); absent = the template's own settings. */
  engine?: EngineParams;
}

/** How the model runs on this card: time and memory, not a job's numbers (VAE tiling: see vaeTilingAbovePixels). */
export interface EngineParams {
  attention: 'sageattn' | 'sdpa';
  /** Keep the diffusion model on the GPU between jobs instead of offloading it after each. */
  residentModel: boolean;
  /** Transformer blocks kept in CPU memory and swapped in for each step (WanVideoBlockSwap); 0 = none. */
  blockSwap: number;
  /**
   * Frame area (width x height) above which VAE encode and decode run tiled; null = never. Tiles can leave
   * faint seams, so this is set only where an untiled pass would not fit the card.
   */
  vaeTilingAbovePixels: number | null;
}

/** Transformer blocks of the 14B model: the most block swap can move (WanVideoBlockSwap allows 48, for LongCat). */
export const MODEL_BLOCKS = 40;

/** Largest seed we hand out: ComfyUI accepts up to 2^64-1, JSON numbers are exact up to 2^53-1. */
export const MAX_SEED = Number.MAX_SAFE_INTEGER;
/** Longest prompt text (the job schema enforces the same limit, reading it from here). */
export const MAX_PROMPT_CHARS = 4000;
// Relative names inside ComfyUI's input/output folders; no absolute paths, backslashes or `..`.
const SAFE_NAME = /^(?!\/)(?!.*(?:^|\/)\.\.(?:\/|$))[A-Za-z0-9._ ()/-]{1,200}$/;
const SAFE_PREFIX = /^(?!\/)(?!.*(?:^|\/)\.\.(?:\/|$))[A-Za-z0-9_/-]{1,120}$/;

export function randomSeed(random: () => number = Math.random): number {
  return Math.floor(random() * (MAX_SEED + 1));
}

function invalid(field: string, message: string): WorkerError {
  return new WorkerError('INVALID_INPUT', `${field}: ${message}`, { details: { field } });
}

function checkNumber(field: string, value: number, range: Range, opts: { integer?: boolean; multipleOf?: number } = {}): void {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw invalid(field, `expected a number, got ${String(value)}`);
  if (opts.integer && !Number.isInteger(value)) throw invalid(field, `expected a whole number, got ${value}`);
  if (value < range.min || value > range.max) {
    throw invalid(field, `must be from ${range.min} to ${range.max} for this variant, got ${value}`);
  }
  if (opts.multipleOf && value % opts.multipleOf !== 0) {
    throw invalid(field, `must be a multiple of ${opts.multipleOf}, got ${value}`);
  }
}

function checkString(field: string, value: string, pattern?: RegExp, max = MAX_PROMPT_CHARS): void {
  if (typeof value !== 'string') throw invalid(field, 'expected a string');
  if (value.length > max) throw invalid(field, `at most ${max} characters`);
  if (pattern && !pattern.test(value)) throw invalid(field, `"${value}" is not a safe relative name`);
}

function validate(params: WorkflowParams): void {
  const { bounds } = VARIANTS[params.variant];
  checkNumber('width', params.width, bounds.width, { integer: true, multipleOf: bounds.width.multipleOf });
  checkNumber('height', params.height, bounds.height, { integer: true, multipleOf: bounds.height.multipleOf });
  checkNumber('num_frames', params.num_frames, bounds.num_frames, { integer: true });
  if ((params.num_frames - 1) % 4 !== 0) {
    throw invalid('num_frames', `must be 4n+1 (e.g. 81, 161), got ${params.num_frames}`);
  }
  checkNumber('fps', params.fps, bounds.fps);
  checkNumber('steps', params.steps, bounds.steps, { integer: true });
  checkNumber('cfg', params.cfg, bounds.cfg);
  checkNumber('shift', params.shift, bounds.shift);
  checkNumber('crf', params.crf, bounds.crf, { integer: true });
  checkNumber('seed', params.seed, { min: 0, max: MAX_SEED }, { integer: true });
  checkString('prompt', params.prompt);
  checkString('negative_prompt', params.negative_prompt);
  checkString('referenceImageName', params.referenceImageName, SAFE_NAME);
  checkString('poseVideoName', params.poseVideoName, SAFE_NAME);
  checkString('filenamePrefix', params.filenamePrefix, SAFE_PREFIX);
}

function node(prompt: ApiPrompt, role: keyof typeof NODES): ApiNode {
  const { id, classType } = NODES[role];
  const found = prompt[id];
  // A template that breaks the node-id convention is a bug in the template, not in the job.
  if (!found || found.class_type !== classType) {
    throw new WorkerError('INTERNAL', `template lacks node ${id} (${classType}) for ${role}`, { details: { node: id } });
  }
  return found;
}

function diffusionModelPath(precision: Precision): string {
  const file = MODEL_FILES.find((f) => f.role === 'diffusion_model' && f.precisions.includes(precision));
  if (!file) throw new WorkerError('INTERNAL', `models.json has no diffusion_model for precision ${precision}`);
  return file.path;
}

function removeBlockSwap(prompt: ApiPrompt): void {
  node(prompt, 'blockSwap');
  delete prompt[NODES.blockSwap.id];
  delete node(prompt, 'modelLoader').inputs.block_swap_args;
}

function applyEngine(prompt: ApiPrompt, engine: EngineParams, pixels: number): void {
  if (!Number.isInteger(engine.blockSwap) || engine.blockSwap < 0 || engine.blockSwap > MODEL_BLOCKS) {
    throw new WorkerError('INTERNAL', `engine.blockSwap must be a whole number from 0 to ${MODEL_BLOCKS}, got ${engine.blockSwap}`);
  }
  Object.assign(node(prompt, 'modelLoader').inputs, {
    attention_mode: engine.attention,
    load_device: engine.residentModel ? 'main_device' : 'offload_device',
  });
  Object.assign(node(prompt, 'sampler').inputs, { force_offload: !engine.residentModel });
  if (engine.blockSwap > 0) {
    Object.assign(node(prompt, 'blockSwap').inputs, { blocks_to_swap: engine.blockSwap });
    node(prompt, 'modelLoader').inputs.block_swap_args = [NODES.blockSwap.id, 0];
  } else {
    removeBlockSwap(prompt);
  }
  const tiled = engine.vaeTilingAbovePixels !== null && pixels > engine.vaeTilingAbovePixels;
  node(prompt, 'poseEncode').inputs.enable_vae_tiling = tiled;
  node(prompt, 'imageToVideoEncode').inputs.tiled_vae = tiled;
  node(prompt, 'decode').inputs.enable_vae_tiling = tiled;
}

/** The API prompt for one job: a deep copy of the variant's template with the job's values filled in. */
export function buildPrompt(params: WorkflowParams): ApiPrompt {
  if (!isVariantName(params.variant)) throw invalid('variant', `unknown variant "${String(params.variant)}"`);
  validate(params);
  const prompt = structuredClone(VARIANTS[params.variant].template);

  Object.assign(node(prompt, 'modelLoader').inputs, { model: diffusionModelPath(params.precision ?? DEFAULT_PRECISION) });
  if (params.engine) applyEngine(prompt, params.engine, params.width * params.height);
  else removeBlockSwap(prompt);
  Object.assign(node(prompt, 'textEncode').inputs, {
    positive_prompt: params.prompt,
    negative_prompt: params.negative_prompt,
  });
  Object.assign(node(prompt, 'referenceImage').inputs, { image: params.referenceImageName });
  // Loaded at the output rate, capped at the requested frames; format "Wan" truncates to 4n+1.
  Object.assign(node(prompt, 'poseVideo').inputs, {
    video: params.poseVideoName,
    force_rate: params.fps,
    frame_load_cap: params.num_frames,
  });
  // Every later size comes from this crop (GetImageSizeAndCount), so one place sets it.
  Object.assign(node(prompt, 'targetSize').inputs, { width: params.width, height: params.height });
  Object.assign(node(prompt, 'sampler').inputs, {
    steps: params.steps,
    cfg: params.cfg,
    shift: params.shift,
    seed: params.seed,
  });
  Object.assign(node(prompt, 'output').inputs, {
    filename_prefix: params.filenamePrefix,
    frame_rate: params.fps,
    crf: params.crf,
  });

  // Context windows only for videos longer than one training clip.
  if (params.num_frames <= CONTEXT_WINDOW_FRAMES) {
    node(prompt, 'contextOptions');
    delete prompt[NODES.contextOptions.id];
    delete node(prompt, 'sampler').inputs.context_options;
  }
  return prompt;
}
