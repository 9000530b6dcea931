// Files named in a history entry's `outputs` (reference §4). Generic rule: any entry with `filename` and
// `type` is a file; its place is <dir for type>/<subfolder>/<filename>; `fullpath` is never trusted.
import path from 'node:path';
import { comfyError } from './errors';

export type ComfyFileType = 'output' | 'temp' | 'input';

export interface ComfyOutputFile {
  filename: string;
  subfolder: string;
  type: ComfyFileType;
  /** Output key the file was listed under: `gifs` (VHS), `images` (SaveImage/SaveVideo), … */
  key: string;
  /** The node's UI dict had `animated: [true]` (core SaveVideo/SaveWEBM/SaveAnimated*). */
  animated: boolean;
  /** VHS's mime type, e.g. `video/h264-mp4`. */
  format?: string;
  frameRate?: number;
  nodeId: string;
}

/** What names a file in ComfyUI's folders (what /view takes). */
export type ComfyFileRef = Pick<ComfyOutputFile, 'filename' | 'subfolder' | 'type'>;

const VIDEO_EXTENSIONS = new Set(['.mp4', '.webm', '.mkv', '.mov', '.avi', '.m4v']);

function isFileType(v: unknown): v is ComfyFileType {
  return v === 'output' || v === 'temp' || v === 'input';
}

/** Every file of every node, whatever the key. */
export function listOutputFiles(outputs: Record<string, Record<string, unknown>>): ComfyOutputFile[] {
  const files: ComfyOutputFile[] = [];
  for (const [nodeId, ui] of Object.entries(outputs)) {
    const animated = Array.isArray(ui.animated) && ui.animated.some((a) => a === true);
    for (const [key, value] of Object.entries(ui)) {
      if (!Array.isArray(value)) continue;
      for (const item of value) {
        if (!item || typeof item !== 'object') continue;
        const e = item as Record<string, unknown>;
        if (typeof e.filename !== 'string' || !isFileType(e.type)) continue;
        files.push({
          filename: e.filename,
          subfolder: typeof e.subfolder === 'string' ? e.subfolder : '',
          type: e.type,
          key,
          animated,
          ...(typeof e.format === 'string' ? { format: e.format } : {}),
          ...(typeof e.frame_rate === 'number' ? { frameRate: e.frame_rate } : {}),
          nodeId,
        });
      }
    }
  }
  return files;
}

/**
 * The videos a prompt wrote: VHS_VideoCombine's `gifs` and core SaveVideo's `images` with `animated`
 * (video container extension, so animated WEBP/PNG stills are not taken), saved outputs only.
 */
export function videoOutputs(files: readonly ComfyOutputFile[]): ComfyOutputFile[] {
  return files.filter((f) => {
    if (f.type !== 'output') return false;
    const isVideoFile = VIDEO_EXTENSIONS.has(path.extname(f.filename).toLowerCase()) || (f.format?.startsWith('video/') ?? false);
    if (f.key === 'gifs') return isVideoFile;
    return f.key === 'images' && f.animated && isVideoFile;
  });
}

/** Absolute path of a file inside `dir`, refusing names that would escape it. */
export function resolveInside(dir: string, subfolder: string, filename: string): string {
  const root = path.resolve(dir);
  const full = path.resolve(root, subfolder, filename);
  if (filename.includes('/') || filename.includes('\\') || filename === '..' || !full.startsWith(root + path.sep)) {
    throw comfyError('EXECUTION_FAILED', `ComfyUI reported an output outside its folder: ${path.join(subfolder, filename)}`, {
      details: { subfolder, filename },
    });
  }
  return full;
}
