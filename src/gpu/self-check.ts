// Runs the attention self-check script once, with the Python that runs ComfyUI, and parses its report.
import { execFile } from 'node:child_process';
import { parseGpuReport, type GpuReport } from './report';

export interface GpuCheckOptions {
  python: string;
  script: string;
  /** The check imports torch and initialises CUDA: seconds, not minutes. */
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
}

export type GpuCheckResult = { report: GpuReport } | { error: string };

export function runGpuCheck(opts: GpuCheckOptions): Promise<GpuCheckResult> {
  return new Promise((resolve) => {
    execFile(
      opts.python,
      [opts.script, '--modes', 'sageattn,sdpa'],
      { timeout: opts.timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1024 * 1024, ...(opts.env ? { env: opts.env } : {}) },
      (err, stdout, stderr) => {
        if (err?.killed) return resolve({ error: `no report within ${Math.round(opts.timeoutMs / 1000)} s` });
        if (err && typeof err.code === 'string') return resolve({ error: `could not start ${opts.python}: ${err.message}` });
        const parsed = parseGpuReport(stdout);
        if ('report' in parsed || !err) return resolve(parsed);
        const last = stderr.trim().split('\n').pop() ?? '';
        resolve({ error: `${parsed.error} (exit ${err.code}${last ? `: ${last}` : ''})` });
      },
    );
  });
}
