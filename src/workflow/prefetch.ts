// Reads the model files a job loads while ComfyUI boots, so that the first job finds them in the page
// cache instead of waiting on the disk or the network volume. The boot is CPU-bound (Python imports,
// CUDA init: 15-25 s on the H200 machine) and leaves the disk idle; a cold container's first job then reads
// ~30 GB (fp8) before it computes. Only reads: nothing a job computes changes. Files go in the order the
// workflow loads them, and only as many as fit in the memory the page cache may use (a file that would
// push out one read earlier is skipped: the job reads it then, as it would have anyway).
import { open } from 'node:fs/promises';
import { cacheableMemoryBytes } from '../lib/cacheable-memory';
import type { ModelFile, Precision } from './manifest';
import { locateModelFile } from './models';
import { VARIANTS, type VariantName } from './variants';

/** The order the templates' loaders read their files in (VAE and text encoder first, the diffusion model late). */
const LOAD_ORDER = [
  'vae',
  'text_encoder',
  'clip_vision',
  'person_detector',
  'pose_estimator',
  'pose_estimator_data',
  'diffusion_model',
  'distill_lora',
];

/** `variant`'s model files on disk, in the order a job loads them (files not found are left out). */
export function modelFilesInLoadOrder(variant: VariantName, precision: Precision, modelsDirs: readonly string[]): string[] {
  const rank = (f: ModelFile) => {
    const i = LOAD_ORDER.indexOf(f.role);
    return i === -1 ? LOAD_ORDER.length : i;
  };
  return [...VARIANTS[variant].requiredModels(precision)]
    .sort((a, b) => rank(a) - rank(b))
    .map((f) => locateModelFile(f, modelsDirs))
    .filter((p): p is string => p !== undefined);
}

/** What a prefetch may read: 80% of the memory the page cache can take without evicting anything. */
export function prefetchBudgetBytes(cacheable: number = cacheableMemoryBytes()): number {
  return Math.floor(0.8 * cacheable);
}

export interface PrefetchOptions {
  files: readonly string[];
  /** Most bytes to read: what the page cache may hold without pushing out what was read first. */
  budgetBytes: number;
  signal?: AbortSignal;
  /** Read size; default 8 MiB. */
  chunkBytes?: number;
}

export interface PrefetchResult {
  files: number;
  bytes: number;
  /** Files left unread: over the budget, or unreadable (with the reason). */
  skipped: string[];
  seconds: number;
  aborted: boolean;
}

export async function prefetchFiles(opts: PrefetchOptions): Promise<PrefetchResult> {
  const started = performance.now();
  const buffer = Buffer.allocUnsafe(opts.chunkBytes ?? 8 * 1024 * 1024);
  const result: PrefetchResult = { files: 0, bytes: 0, skipped: [], seconds: 0, aborted: false };
  let budget = opts.budgetBytes;
  for (const file of opts.files) {
    if (opts.signal?.aborted) break;
    let handle;
    try {
      handle = await open(file, 'r');
      const { size } = await handle.stat();
      if (size > budget) {
        result.skipped.push(`${file} (over the memory budget)`);
        continue;
      }
      budget -= size;
      for (let position = 0; position < size && !opts.signal?.aborted;) {
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
        if (bytesRead === 0) break;
        position += bytesRead;
        result.bytes += bytesRead;
      }
      result.files += 1;
    } catch (err) {
      result.skipped.push(`${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    } finally {
      await handle?.close();
    }
  }
  result.aborted = opts.signal?.aborted ?? false;
  result.seconds = (performance.now() - started) / 1000;
  return result;
}
