// Worker start check: which variants have every model file they need on disk.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_PRECISION, modelFileLabel, type ModelFile, type Precision } from './manifest';
import { VARIANTS, VARIANT_NAMES, type VariantName } from './variants';

// ComfyUI's folder_paths.py also searches these legacy folders: unet/ for diffusion_models,
// clip/ for text_encoders.
const FOLDER_ALIASES: Record<string, string[]> = {
  diffusion_models: ['diffusion_models', 'unet'],
  text_encoders: ['text_encoders', 'clip'],
};

export interface ModelCheck {
  available: VariantName[];
  /** Per variant, the missing files as `folder/path`; empty when the variant is available. */
  missing: Record<VariantName, string[]>;
}

export interface CheckModelsOptions {
  /** Model roots (e.g. /comfyui/models and /runpod-volume/models); a file may be in any. */
  modelsDirs: string[];
  /** Weights the image carries (default fp8). */
  precision?: Precision;
  exists?: (p: string) => boolean;
}

/** Where ComfyUI would find `file` (the first root and folder alias holding it); undefined when nowhere. */
export function locateModelFile(file: ModelFile, dirs: readonly string[], exists: (p: string) => boolean = existsSync): string | undefined {
  const folders = FOLDER_ALIASES[file.folder] ?? [file.folder];
  for (const dir of dirs) {
    for (const folder of folders) {
      const candidate = path.join(dir, folder, ...file.path.split('/'));
      if (exists(candidate)) return candidate;
    }
  }
  return undefined;
}

export function checkModels(opts: CheckModelsOptions): ModelCheck {
  const precision = opts.precision ?? DEFAULT_PRECISION;
  const exists = opts.exists ?? existsSync;
  const missing = {} as Record<VariantName, string[]>;
  for (const variant of VARIANT_NAMES) {
    const files = VARIANTS[variant].requiredModels(precision);
    missing[variant] = files.filter((file) => locateModelFile(file, opts.modelsDirs, exists) === undefined).map(modelFileLabel);
    // A variant made for other precisions (turbo-fp8: fp8 only) has no diffusion model in this image at all.
    if (!files.some((f) => f.role === 'diffusion_model'))
      missing[variant].push(`a ${precision} diffusion model for ${variant} (workflows/models.json lists none)`);
  }
  return { available: VARIANT_NAMES.filter((v) => missing[v].length === 0), missing };
}
