// Fills a variant's template from validated job values. Pure: no I/O, no clock, no randomness
// (the seed comes in; randomSeed makes one when the job has none). The job schema (src/job/schema.ts)
// validates the input; the checks here are the builder's own preconditions, from the same bounds,
// so it stays safe when used alone (and file names are checked only here).
import type { WorkerError } from '../lib/errors';
import { workflowError } from './errors';
import { DEFAULT_PRECISION, MODEL_FILES, type Precision } from './manifest';
import { CONTEXT_WINDOW_FRAMES, NODES, VARIANTS, VARIANT_NAMES, isVariantName, type Range, type VariantName } from './variants';
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
  /** Let the text encoder read and write its disk cache (the worker's ComfyUI hook bounds and places it). */
  textEmbedCache?: boolean;
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
  /**
   * torch.compile the transformer blocks (WanVideoTorchCompileSettings, inductor). Fused kernels round
   * differently from eager ones, so this is opt-in (TORCH_COMPILE); each new frame size compiles again.
   */
  compile: boolean;
  /** Set when this card cannot run fp8 matrix multiplies: the reason, for the job's error. */
  fp8MatmulUnsupported?: string;
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
  return workflowError('INVALID_INPUT', `${field}: ${message}`, { details: { field } });
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
  if (pattern && !pattern.test(value)) {
    throw invalid(
      field,
      `"${value}" is not a safe relative name: use letters, digits and . _ - ( ) / or spaces, with no leading / and no ..`,
    );
  }
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

type NodeRole = keyof typeof NODES;

/** A copy of a variant's template, its nodes reached by role (every template follows the node ids of NODES). */
class Graph {
  constructor(
    readonly prompt: ApiPrompt,
    private readonly variant: VariantName,
  ) {}

  node(role: NodeRole): ApiNode {
    const { id, classType } = NODES[role];
    const found = this.prompt[id];
    // A template that breaks the node-id convention is a fault of the image, not of the job.
    if (!found || found.class_type !== classType) {
      const there = found ? `node ${id} is a ${found.class_type}` : `there is no node ${id}`;
      throw workflowError(
        'TEMPLATE_INVALID',
        `the template of variant "${this.variant}" (workflows/${this.variant}.json) does not fit the builder: ${there}, where it ` +
          `fills the ${role} (${classType}). Restore the template from the repository, or give that node id ${id} in the edited ` +
          'one, and rebuild the image',
        { details: { variant: this.variant, node: id, role, expected: classType, ...(found ? { found: found.class_type } : {}) } },
      );
    }
    return found;
  }

  set(role: NodeRole, inputs: Record<string, unknown>): void {
    Object.assign(this.node(role).inputs, inputs);
  }

  /** Drops the node and `role`'s link to it from the node that uses it. */
  remove(role: NodeRole, linkedFrom: { role: NodeRole; input: string }): void {
    this.node(role);
    delete this.prompt[NODES[role].id];
    delete this.node(linkedFrom.role).inputs[linkedFrom.input];
  }
}

function diffusionModelPath(variant: VariantName, precision: Precision): string {
  const models = MODEL_FILES.filter((f) => f.role === 'diffusion_model' && f.variants.includes(variant));
  const file = models.find((f) => f.precisions.includes(precision));
  if (!file) {
    const listed = [...new Set(models.flatMap((f) => f.precisions))].join(', ');
    throw workflowError(
      'MANIFEST_INVALID',
      `workflows/models.json lists no diffusion_model of variant "${variant}" for precision "${precision}" (it has: ${listed}). ` +
        'Set MODEL_PRECISION to one of those, or add the file to the manifest and rebuild the image',
      { details: { variant, precision } },
    );
  }
  return file.path;
}

const BLOCK_SWAP_LINK = { role: 'modelLoader', input: 'block_swap_args' } as const;
const COMPILE_LINK = { role: 'modelLoader', input: 'compile_args' } as const;

function applyEngine(graph: Graph, engine: EngineParams, pixels: number): void {
  if (!Number.isInteger(engine.blockSwap) || engine.blockSwap < 0 || engine.blockSwap > MODEL_BLOCKS) {
    throw workflowError(
      'CONFIG_INVALID',
      `engine.blockSwap must be a whole number from 0 to ${MODEL_BLOCKS} (the model's transformer blocks), got ${engine.blockSwap}: ` +
        `set BLOCK_SWAP to auto or 0-${MODEL_BLOCKS}`,
      { details: { blockSwap: engine.blockSwap } },
    );
  }
  graph.set('modelLoader', {
    attention_mode: engine.attention,
    load_device: engine.residentModel ? 'main_device' : 'offload_device',
  });
  // Where the model stays on the GPU, so do CLIP-H (1.2 GiB) and the VAE (0.25 GiB): each offload moved
  // them to the CPU and emptied CUDA's cache, only to bring them back for the next encode or job.
  const offload = { force_offload: !engine.residentModel };
  for (const role of ['sampler', 'poseClipEncode', 'referenceClipEncode', 'imageToVideoEncode'] as const) graph.set(role, offload);
  if (engine.blockSwap > 0) {
    graph.set('blockSwap', { blocks_to_swap: engine.blockSwap });
    graph.set('modelLoader', { block_swap_args: [NODES.blockSwap.id, 0] });
  } else {
    graph.remove('blockSwap', BLOCK_SWAP_LINK);
  }
  if (engine.compile) graph.set('modelLoader', { compile_args: [NODES.torchCompile.id, 0] });
  else graph.remove('torchCompile', COMPILE_LINK);
  const tiled = engine.vaeTilingAbovePixels !== null && pixels > engine.vaeTilingAbovePixels;
  graph.set('poseEncode', { enable_vae_tiling: tiled });
  graph.set('imageToVideoEncode', { tiled_vae: tiled });
  graph.set('decode', { enable_vae_tiling: tiled });
}

/** Why a card with these engine settings cannot run `variant` (turbo-fp8 below compute capability 8.9); undefined when it can. */
export function unsupportedVariant(
  variant: VariantName,
  engine: Pick<EngineParams, 'fp8MatmulUnsupported'> | undefined,
): string | undefined {
  if (!VARIANTS[variant].fp8Matmul || !engine?.fp8MatmulUnsupported) return undefined;
  return (
    `"${variant}" runs fp8 matrix multiplies, which this worker's GPU cannot: ${engine.fp8MatmulUnsupported}. ` +
    'Use variant "turbo" (the same distillation, unmerged), or deploy on an Ada or Hopper GPU'
  );
}

/** The API prompt for one job: a deep copy of the variant's template with the job's values filled in. */
export function buildPrompt(params: WorkflowParams): ApiPrompt {
  if (!isVariantName(params.variant)) {
    throw invalid('variant', `unknown variant "${String(params.variant)}"; use one of ${VARIANT_NAMES.join(', ')}`);
  }
  validate(params);
  const graph = new Graph(structuredClone(VARIANTS[params.variant].template), params.variant);

  const unsupported = unsupportedVariant(params.variant, params.engine);
  if (unsupported) throw invalid('variant', unsupported);
  graph.set('modelLoader', { model: diffusionModelPath(params.variant, params.precision ?? DEFAULT_PRECISION) });
  if (params.engine) applyEngine(graph, params.engine, params.width * params.height);
  else {
    graph.remove('blockSwap', BLOCK_SWAP_LINK);
    graph.remove('torchCompile', COMPILE_LINK);
  }
  graph.set('textEncode', {
    positive_prompt: params.prompt,
    negative_prompt: params.negative_prompt,
    use_disk_cache: params.textEmbedCache ?? false,
  });
  graph.set('referenceImage', { image: params.referenceImageName });
  // Loaded at the output rate, capped at the requested frames; format "Wan" truncates to 4n+1.
  graph.set('poseVideo', { video: params.poseVideoName, force_rate: params.fps, frame_load_cap: params.num_frames });
  // Every later size comes from this crop (GetImageSizeAndCount), so one place sets it.
  graph.set('targetSize', { width: params.width, height: params.height });
  graph.set('sampler', { steps: params.steps, cfg: params.cfg, shift: params.shift, seed: params.seed });
  graph.set('output', { filename_prefix: params.filenamePrefix, frame_rate: params.fps, crf: params.crf });

  // Context windows only for videos longer than one training clip.
  if (params.num_frames <= CONTEXT_WINDOW_FRAMES) graph.remove('contextOptions', { role: 'sampler', input: 'context_options' });
  return graph.prompt;
}
