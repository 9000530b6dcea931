// The model manifest (workflows/models.json): every file each variant needs, per precision.
// The image build downloads from it; the worker checks at start that the files exist.
import manifest from '../../workflows/models.json' with { type: 'json' };

/**
 * Diffusion-model weights an image can carry (workflows/models.json `precisions`; a test keeps the two
 * equal). `gguf-<quant>` are MCG-NJU's GGUF quantizations, loaded by the same WanVideoModelLoader.
 */
export const PRECISIONS = ['fp8', 'fp16', 'gguf-q4_k_m', 'gguf-q5_k_m', 'gguf-q6_k'] as const;
export type Precision = (typeof PRECISIONS)[number];
export const DEFAULT_PRECISION: Precision = 'fp8';

export function isPrecision(value: string): value is Precision {
  return (PRECISIONS as readonly string[]).includes(value);
}

export interface ModelFile {
  id: string;
  /** What the file is for, e.g. `diffusion_model`, `distill_lora`, `text_encoder`. */
  role: string;
  /** ComfyUI model folder (`diffusion_models`, `loras`, ... or `detection`, registered by WanAnimatePreprocess). */
  folder: string;
  /** Path under `folder`, exactly the combo value the workflow uses. */
  path: string;
  /** Where the build downloads it; absent for a file the build derives from others (`derive`). */
  source?: { hf_repo: string; hf_path: string };
  /** How the build makes it from other entries (builder/derive_model.py); absent for a downloaded file. */
  derive?: { recipe: string; base: string; lora: string; strength: number };
  bytes: number | null;
  sha256: string | null;
  precisions: string[];
  variants: string[];
  approx_size?: string | null;
  note?: string;
}

export const MODEL_FILES: readonly ModelFile[] = manifest.files;

/** The files `variant` needs when the image carries `precision` weights. */
export function modelFilesFor(variant: string, precision: Precision): ModelFile[] {
  return MODEL_FILES.filter((f) => f.variants.includes(variant) && f.precisions.includes(precision));
}

/**
 * A name for the text encoder file the manifest pins (`umt5-xxl-bf16-4fa971faf306`): umT5 embeddings cached
 * on disk are keyed by prompt text only, so their folder is named after the encoder that made them.
 */
export function textEncoderKey(): string {
  const encoder = MODEL_FILES.find((f) => f.role === 'text_encoder');
  if (!encoder) throw new Error('workflows/models.json lists no text_encoder');
  return `${encoder.id}-${(encoder.sha256 ?? `${encoder.bytes ?? 'unpinned'}`).slice(0, 12)}`;
}

/** `folder/path`, the name users and error messages see. */
export function modelFileLabel(file: Pick<ModelFile, 'folder' | 'path'>): string {
  return `${file.folder}/${file.path}`;
}
