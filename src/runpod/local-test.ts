// One-shot local mode (rp-py `rp_local`): run the job from --test_input or ./test_input.json once,
// print the result, exit 0 on success and 1 otherwise. Unlike rp-py, stream handlers are iterated.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../lib/logger';
import { executeJob } from './execute';
import { UNNAMED_SETTINGS, type Handler, type RunpodJob } from './types';
import type { RuntimeTiming } from './timing';
import { runpodError } from './errors';

export interface LocalTestOptions {
  handler: Handler;
  logger: Logger;
  testInput: string | undefined;
  cwd: string;
  jobTimeoutMs: number;
  /** What the host calls the job timeout, for TIMEOUT messages. */
  jobTimeoutName?: string;
  timing: RuntimeTiming;
  returnAggregateStream: boolean;
  hostname: string;
  /** Where the result JSON is printed. */
  print: (text: string) => void;
  /** Aborts the job (SIGTERM / SIGINT). */
  shutdownSignal: AbortSignal;
}

/**
 * A job without an `id` gets `local_test-<UTC time>-<random>` (rp-py: always `local_test`), so that a
 * second run does not overwrite the first one's outputs.
 */
export function localTestId(now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `local_test-${stamp}-${randomBytes(3).toString('hex')}`;
}

async function readJobText(opts: LocalTestOptions): Promise<string | undefined> {
  if (opts.testInput !== undefined) return opts.testInput;
  try {
    return await readFile(path.join(opts.cwd, 'test_input.json'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export async function runLocalTest(opts: LocalTestOptions): Promise<number> {
  const { logger } = opts;
  const text = await readJobText(opts);
  if (text === undefined) {
    logger.warn('test_input.json not found, exiting.', { cwd: opts.cwd });
    return 1;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    logger.error(`the test input is not valid JSON: ${(err as Error).message}`, {
      source: opts.testInput !== undefined ? '--test_input' : 'test_input.json',
    });
    return 1;
  }
  const fields = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
  if (fields.input === undefined || fields.input === null) {
    logger.error('Job has no input parameter. Unable to run.');
    return 1;
  }
  if (opts.shutdownSignal.aborted) {
    // SIGTERM/SIGINT came while the worker was still starting: the job is not started at all.
    logger.warn('interrupted (SIGTERM/SIGINT) before the job started; exiting');
    return 1;
  }
  const job: RunpodJob = { ...fields, id: typeof fields.id === 'string' ? fields.id : localTestId(), input: fields.input };
  const jobLogger = logger.child({ requestId: job.id });
  const controller = new AbortController();
  const onShutdown = (): void => controller.abort(runpodError('CANCELLED', 'interrupted (SIGTERM/SIGINT)'));
  opts.shutdownSignal.addEventListener('abort', onShutdown, { once: true });
  try {
    const outcome = await executeJob({
      handler: opts.handler,
      job,
      ctx: {
        signal: controller.signal,
        progress: (update) => jobLogger.info('progress', { progress: update }),
        logger: jobLogger,
        mode: 'test_input',
      },
      timeoutMs: opts.jobTimeoutMs,
      timeoutSetting: opts.jobTimeoutName ?? UNNAMED_SETTINGS.jobTimeout,
      origin: { hostname: opts.hostname, workerId: 'local' },
      returnAggregateStream: opts.returnAggregateStream,
      abandonGraceMs: opts.timing.abandonGraceMs,
      sendChunk: async (chunk) => jobLogger.info('stream chunk', { chunk: chunk.output }),
    });
    opts.print(`${JSON.stringify(outcome.body, null, 2)}\n`);
    if (outcome.body.error) {
      jobLogger.error(`Job ${job.id} failed with error: ${String(outcome.body.error)}`);
      return 1;
    }
    jobLogger.info(`Job ${job.id} completed successfully.`);
    logger.info('Local testing complete, exiting.');
    return 0;
  } finally {
    opts.shutdownSignal.removeEventListener('abort', onShutdown);
  }
}
