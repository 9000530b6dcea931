// Runs the attention self-check script once, with the Python that runs ComfyUI, and parses its report.
import { spawn as nodeSpawn } from 'node:child_process';
import { parseGpuReport, type GpuReport } from './report';

export interface GpuCheckOptions {
  python: string;
  script: string;
  /** The check imports torch and initialises CUDA: seconds, not minutes. */
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
  spawn?: typeof nodeSpawn;
}

export type GpuCheckResult = { report: GpuReport } | { error: string };

export function runGpuCheck(opts: GpuCheckOptions): Promise<GpuCheckResult> {
  const spawn = opts.spawn ?? nodeSpawn;
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let settled = false;
    const done = (r: GpuCheckResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const child = spawn(opts.python, [opts.script, '--modes', 'sageattn,sdpa'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(opts.env ? { env: opts.env } : {}),
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      done({ error: `no report within ${Math.round(opts.timeoutMs / 1000)} s` });
    }, opts.timeoutMs);
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    child.on('error', (err) => done({ error: `could not start ${opts.python}: ${err.message}` }));
    child.on('close', (code) => {
      const parsed = parseGpuReport(stdout);
      if ('report' in parsed || code === 0) return done(parsed);
      const last = stderr.trim().split('\n').pop() ?? '';
      done({ error: `${'error' in parsed ? parsed.error : ''} (exit ${code}${last ? `: ${last}` : ''})` });
    });
  });
}
