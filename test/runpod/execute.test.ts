// executeJob owns the job deadline: it aborts the handler's signal with TIMEOUT and clears its timer.
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { isWorkerError, WorkerError } from '../../src/lib/errors';
import { executeJob, type ExecuteOptions } from '../../src/runpod/execute';
import type { Handler } from '../../src/runpod';
import { aborted, captureLogger } from './helpers';

afterEach(() => {
  jest.useRealTimers();
});

function options(handler: Handler, signal: AbortSignal, over: Partial<ExecuteOptions> = {}): ExecuteOptions {
  return {
    handler,
    job: { id: 'j1', input: {} },
    ctx: { signal, progress: () => {}, logger: captureLogger().logger, mode: 'production' },
    timeoutMs: 1_000,
    timeoutSetting: 'JOB_TIMEOUT_S',
    origin: { hostname: 'h1', workerId: 'w1' },
    returnAggregateStream: false,
    abandonGraceMs: 500,
    sendChunk: async () => {},
    ...over,
  };
}

/** Settles `run` under fake timers: advances them by `ms`, then reports what it resolved to, if anything. */
async function after<T>(run: Promise<T>, ms: number): Promise<T | undefined> {
  let result: T | undefined;
  void run.then((r) => (result = r));
  await jest.advanceTimersByTimeAsync(ms);
  return result;
}

describe('executeJob deadline', () => {
  it('aborts the handler with TIMEOUT naming the setting once timeoutMs passes, not before', async () => {
    jest.useFakeTimers();
    const seen: unknown[] = [];
    const handler: Handler = async (_job, ctx) => {
      const reason = await aborted(ctx.signal);
      seen.push(reason);
      throw reason;
    };
    const run = executeJob(options(handler, new AbortController().signal, { timeoutMs: 1_000, timeoutSetting: 'policy.executionTimeout' }));
    expect(await after(run, 999)).toBeUndefined();
    const outcome = await after(run, 1);
    expect(outcome).toBeDefined();
    expect(isWorkerError(seen[0], 'TIMEOUT')).toBe(true);
    expect((seen[0] as WorkerError).message).toBe('the job ran longer than policy.executionTimeout (1000 ms)');
    expect(outcome?.abortReason).toBe(seen[0]);
    expect(JSON.parse(String(outcome?.body.error)).error_message).toBe(
      'TIMEOUT: the job ran longer than policy.executionTimeout (1000 ms)',
    );
  });

  it("keeps the caller's abort reason when it comes first, and leaves no timer behind", async () => {
    jest.useFakeTimers();
    const caller = new AbortController();
    const run = executeJob(options(async (_job, ctx) => aborted(ctx.signal), caller.signal, { timeoutMs: 60_000 }));
    caller.abort(new WorkerError('CANCELLED', 'stopped'));
    const outcome = await after(run, 0);
    expect(isWorkerError(outcome?.abortReason, 'CANCELLED')).toBe(true);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('clears the deadline when the handler finishes first', async () => {
    jest.useFakeTimers();
    const outcome = await after(executeJob(options(async () => 'ok', new AbortController().signal, { timeoutMs: 60_000 })), 0);
    expect(outcome).toEqual({ body: { output: 'ok' }, isStream: false });
    expect(jest.getTimerCount()).toBe(0);
  });

  it('times out a stream handler too', async () => {
    jest.useFakeTimers();
    const handler: Handler = async function* (_job, ctx) {
      yield 1;
      throw await aborted(ctx.signal);
    };
    const outcome = await after(executeJob(options(handler, new AbortController().signal, { timeoutMs: 200 })), 200);
    expect(outcome?.isStream).toBe(true);
    expect(isWorkerError(outcome?.abortReason, 'TIMEOUT')).toBe(true);
  });
});
