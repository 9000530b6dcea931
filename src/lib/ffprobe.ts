// The one ffprobe runner: outputs (src/storage) and inputs (src/media) are both read with it.
import { execFile } from 'node:child_process';

/** How long one ffprobe run may take unless the caller says otherwise. */
export const FFPROBE_TIMEOUT_MS = 30_000;

export interface FfprobeOptions {
  /** ffprobe binary; in the image it is on PATH. */
  ffprobePath?: string;
  /** Default FFPROBE_TIMEOUT_MS. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Runs ffprobe and returns its stdout; a failure carries ffprobe's stderr as `stderr`. */
export function runFfprobe(args: string[], opts: FfprobeOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      opts.ffprobePath ?? 'ffprobe',
      args,
      { timeout: opts.timeoutMs ?? FFPROBE_TIMEOUT_MS, signal: opts.signal, maxBuffer: 1024 * 1024 },
      (err, stdout, stderr) => (err ? reject(Object.assign(err, { stderr })) : resolve(stdout)),
    );
  });
}

/** True when `error` means the ffprobe binary itself is missing (not the file it was asked to read). */
export function isFfprobeMissing(error: unknown, file: string): boolean {
  return (error as { code?: string }).code === 'ENOENT' && (error as { path?: string }).path !== file;
}

/** What to tell the operator when isFfprobeMissing: the binary looked for and how to provide one. */
export function ffprobeMissingMessage(opts: FfprobeOptions): string {
  return `ffprobe not found at "${opts.ffprobePath ?? 'ffprobe'}" (FFPROBE_PATH); install ffmpeg in the image`;
}

/** "30000/1001" → 29.97 (rounded to 3 decimals); "0/0" → 0. */
export function parseRate(rate: string | undefined): number {
  const [num, den] = (rate ?? '').split('/').map(Number);
  if (!num || !den || !Number.isFinite(num / den)) return 0;
  return Math.round((num / den) * 1000) / 1000;
}
