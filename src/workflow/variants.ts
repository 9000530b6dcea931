// The variant registry. A variant = an API-format template (workflows/<name>.json) + defaults + bounds.
// Adding a variant: add the template file (same node ids as below) and an entry here.
import turboTemplate from '../../workflows/turbo.json' with { type: 'json' };
import turboRcmTemplate from '../../workflows/turbo-rcm.json' with { type: 'json' };
import turboFp8Template from '../../workflows/turbo-fp8.json' with { type: 'json' };
import qualityTemplate from '../../workflows/quality.json' with { type: 'json' };
import { DEFAULT_PRECISION, modelFilesFor, type ModelFile, type Precision } from './manifest';
import type { ApiPrompt } from './types';

export type VariantName = 'turbo' | 'turbo-rcm' | 'turbo-fp8' | 'quality';
export const VARIANT_NAMES: readonly VariantName[] = ['turbo', 'turbo-rcm', 'turbo-fp8', 'quality'];
export const DEFAULT_VARIANT: VariantName = 'turbo';

/**
 * Node ids every template shares, so buildPrompt knows where each job value goes.
 * (Ids follow the SteadyDancer reference graph; 34 is the crop of the driving video, 13 the block swap
 * settings buildPrompt links to the loader on cards that need them, 14 the torch.compile settings it links
 * when TORCH_COMPILE is on.)
 */
export const NODES = {
  modelLoader: { id: '10', classType: 'WanVideoModelLoader' },
  blockSwap: { id: '13', classType: 'WanVideoBlockSwap' },
  torchCompile: { id: '14', classType: 'WanVideoTorchCompileSettings' },
  textEncode: { id: '22', classType: 'WanVideoTextEncodeCached' },
  referenceImage: { id: '30', classType: 'LoadImage' },
  poseVideo: { id: '31', classType: 'VHS_LoadVideo' },
  targetSize: { id: '34', classType: 'ImageResizeKJv2' },
  poseEncode: { id: '43', classType: 'WanVideoEncode' },
  poseClipEncode: { id: '45', classType: 'WanVideoClipVisionEncode' },
  referenceClipEncode: { id: '46', classType: 'WanVideoClipVisionEncode' },
  imageToVideoEncode: { id: '47', classType: 'WanVideoImageToVideoEncode' },
  contextOptions: { id: '49', classType: 'WanVideoContextOptions' },
  sampler: { id: '50', classType: 'WanVideoSampler' },
  decode: { id: '51', classType: 'WanVideoDecode' },
  output: { id: '52', classType: 'VHS_VideoCombine' },
} as const;

/** SteadyDancer was trained on 81-frame clips; longer videos need context windows of this length. */
export const CONTEXT_WINDOW_FRAMES = 81;

export interface Range {
  min: number;
  max: number;
}

export interface VariantDefaults {
  width: number;
  height: number;
  num_frames: number;
  fps: number;
  steps: number;
  cfg: number;
  shift: number;
  scheduler: string;
  crf: number;
  prompt: string;
  negative_prompt: string;
}

export interface VariantBounds {
  width: Range & { multipleOf: number };
  height: Range & { multipleOf: number };
  /** Frames are 4n+1 within this range. */
  num_frames: Range;
  fps: Range;
  steps: Range;
  cfg: Range;
  shift: Range;
  crf: Range;
}

export interface VariantSpec {
  name: VariantName;
  template: ApiPrompt;
  experimental: boolean;
  description: string;
  defaults: VariantDefaults;
  bounds: VariantBounds;
  /** Node classes the template uses: all must be in ComfyUI's /object_info. */
  requiredNodeClasses: string[];
  requiredModels: (precision?: Precision) => ModelFile[];
  /** The template's model loader runs fp8 matrix multiplies (quantization `*_fast`): Ada/Hopper only. */
  fp8Matmul: boolean;
}

/** Wan 2.1's default negative prompt, as the SteadyDancer workflows use it. */
export const WAN_NEGATIVE_PROMPT =
  '色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走';

const SHARED_DEFAULTS = {
  width: 480,
  height: 832,
  num_frames: 81,
  // SteadyDancer's sample_fps; the pose video is loaded and the MP4 written at the same rate.
  fps: 16,
  crf: 19,
  // An empty positive prompt gave back-facing renders (reference §1).
  prompt: 'a person dancing',
  negative_prompt: WAN_NEGATIVE_PROMPT,
};

const SIZE = { min: 256, max: 1280, multipleOf: 16 };
const SHARED_BOUNDS = {
  width: SIZE,
  height: SIZE,
  fps: { min: 8, max: 30 },
  crf: { min: 0, max: 51 },
};

function classesOf(template: ApiPrompt): string[] {
  return [...new Set(Object.values(template).map((n) => n.class_type))].sort();
}

function spec(
  name: VariantName,
  template: ApiPrompt,
  rest: Omit<VariantSpec, 'name' | 'template' | 'requiredNodeClasses' | 'requiredModels' | 'fp8Matmul'>,
): VariantSpec {
  return {
    name,
    template,
    requiredNodeClasses: classesOf(template),
    fp8Matmul: String(template[NODES.modelLoader.id]?.inputs['quantization']).endsWith('_fast'),
    requiredModels: (precision = DEFAULT_PRECISION) => modelFilesFor(name, precision),
    ...rest,
  };
}

/** lightx2v's sampling, unmerged (turbo) or merged into the weights (turbo-fp8). */
const LIGHTX2V_SAMPLING = {
  defaults: { ...SHARED_DEFAULTS, steps: 4, cfg: 1, shift: 5, scheduler: 'dpm++_sde' },
  // cfg stays 1: the distilled LoRA is trained for it, and cfg > 1 would need the negative
  // pose latents this graph does not wire (the model crashes without them).
  bounds: {
    ...SHARED_BOUNDS,
    num_frames: { min: 5, max: 321 },
    steps: { min: 1, max: 12 },
    cfg: { min: 1, max: 1 },
    shift: { min: 1, max: 20 },
  },
};

export const VARIANTS: Readonly<Record<VariantName, VariantSpec>> = {
  turbo: spec('turbo', turboTemplate as ApiPrompt, {
    experimental: false,
    description: 'Step-distilled: lightx2v I2V step-distill LoRA (unmerged), 4 steps, cfg 1, dpm++_sde, SageAttention, fp8 weights.',
    ...LIGHTX2V_SAMPLING,
  }),
  'turbo-rcm': spec('turbo-rcm', turboRcmTemplate as ApiPrompt, {
    experimental: true,
    description:
      "Experimental: TurboDiffusion's rCM distillation as Kijai's T2V-derived rCM LoRA with the rcm scheduler (shift is ignored); untested on SteadyDancer.",
    defaults: { ...SHARED_DEFAULTS, steps: 4, cfg: 1, shift: 5, scheduler: 'rcm' },
    bounds: {
      ...SHARED_BOUNDS,
      num_frames: { min: 5, max: 321 },
      steps: { min: 1, max: 8 },
      cfg: { min: 1, max: 1 },
      shift: { min: 1, max: 20 },
    },
  }),
  'turbo-fp8': spec('turbo-fp8', turboFp8Template as ApiPrompt, {
    experimental: true,
    description:
      'Approximate, opt-in: turbo with the lightx2v LoRA merged into the weights at build time and fp8 matrix multiplies ' +
      '(activations cast to float8 per layer; Ada or Hopper GPUs). Faster per step; its numbers differ from turbo.',
    ...LIGHTX2V_SAMPLING,
  }),
  quality: spec('quality', qualityTemplate as ApiPrompt, {
    experimental: false,
    description:
      'Full sampling: no distillation LoRA, 40 steps, cfg 5, unipc, negative pose latents wired (about 20x the sampler work of turbo).',
    defaults: { ...SHARED_DEFAULTS, steps: 40, cfg: 5, shift: 3, scheduler: 'unipc' },
    bounds: {
      ...SHARED_BOUNDS,
      num_frames: { min: 5, max: 161 },
      steps: { min: 10, max: 60 },
      cfg: { min: 1, max: 10 },
      shift: { min: 1, max: 20 },
    },
  }),
};

export function isVariantName(value: string): value is VariantName {
  return (VARIANT_NAMES as readonly string[]).includes(value);
}

/** Every node class any variant uses (ComfyUI readiness check). */
export function allRequiredNodeClasses(): string[] {
  return [...new Set(VARIANT_NAMES.flatMap((v) => VARIANTS[v].requiredNodeClasses))].sort();
}
