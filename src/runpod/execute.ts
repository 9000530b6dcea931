// Runs one job through the handler and maps whatever happens to one outcome. Shared by every mode,
// so production, the one-shot test and the local API treat a handler the same way.
import { WorkerError } from '../lib/errors';
import { fromReturned, fromRuntimeError, fromStreamThrown, fromThrown, type ErrorOrigin } from './envelope';
import type { Handler, JobContext, JobOutcome, ResultBody, RunpodJob } from './types';
import { runpodError } from './errors';

export interface ExecuteOptions {
  handler: Handler;
  job: RunpodJob;
  /** ctx.signal carries the caller's aborts (stop, cancel, shutdown); executeJob adds the timeout to it. */
  ctx: JobContext;
  /** The job's deadline: then the handler's signal aborts with WorkerError TIMEOUT. */
  timeoutMs: number;
  /** The setting that set the deadline, named in the TIMEOUT message (e.g. an environment variable's name). */
  timeoutSetting: string;
  origin: ErrorOrigin;
  /** Final stream body carries every chunk instead of `[]` (rp-py `return_aggregate_stream`). */
  returnAggregateStream: boolean;
  /** After ctx.signal aborts, how long the handler may take to settle before we report for it. */
  abandonGraceMs: number;
  /** Delivers one stream chunk (`{output: v}`); awaited before the next chunk is pulled. */
  sendChunk: (chunk: { output: unknown }) => Promise<void>;
}

const ABANDONED = Symbol('abandoned');

/** Resolves ABANDONED once the signal has been aborted for `graceMs`; `cancel` clears the timers. */
function abandonment(signal: AbortSignal, graceMs: number): { promise: Promise<typeof ABANDONED>; cancel: () => void } {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const promise = new Promise<typeof ABANDONED>((resolve) => {
    const start = (): void => {
      timer = setTimeout(() => resolve(ABANDONED), graceMs);
    };
    if (signal.aborted) start();
    else {
      onAbort = start;
      signal.addEventListener('abort', start, { once: true });
    }
  });
  return {
    promise,
    cancel: () => {
      clearTimeout(timer);
      if (onAbort) signal.removeEventListener('abort', onAbort);
    },
  };
}

function isAsyncIterable(v: unknown): v is AsyncIterable<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then !== 'function' && Symbol.asyncIterator in v;
}

function abandonedBody(signal: AbortSignal, abandonGraceMs: number): ResultBody {
  const reason = signal.reason instanceof WorkerError ? signal.reason : runpodError('INTERNAL', 'the job was aborted');
  return fromRuntimeError(
    new WorkerError(reason.code, `${reason.message} (the handler did not stop within ${abandonGraceMs} ms of the abort)`, {
      cause: reason,
    }),
  );
}

export async function executeJob(opts: ExecuteOptions): Promise<JobOutcome> {
  const deadline = new AbortController();
  const timer = setTimeout(
    () => deadline.abort(runpodError('TIMEOUT', `the job ran longer than ${opts.timeoutSetting} (${opts.timeoutMs} ms)`)),
    opts.timeoutMs,
  );
  // The first abort wins: its reason is the one the handler and the outcome see.
  const signal = AbortSignal.any([opts.ctx.signal, deadline.signal]);
  const ctx: JobContext = { ...opts.ctx, signal };
  const abandon = abandonment(signal, opts.abandonGraceMs);
  const withAbort = (outcome: Omit<JobOutcome, 'abortReason'>): JobOutcome =>
    signal.aborted ? { ...outcome, abortReason: signal.reason } : outcome;
  try {
    let returned: Promise<unknown> | AsyncIterable<unknown>;
    try {
      returned = opts.handler(opts.job, ctx);
    } catch (err) {
      return withAbort({ body: fromThrown(err, opts.origin), isStream: false });
    }
    if (isAsyncIterable(returned)) return withAbort(await runStream(returned, ctx, opts, abandon.promise));
    try {
      const value = await Promise.race([returned, abandon.promise]);
      if (value === ABANDONED) {
        ctx.logger.error('the handler ignored the abort; reporting the job as failed without waiting for it');
        return withAbort({ body: abandonedBody(signal, opts.abandonGraceMs), isStream: false });
      }
      return withAbort({ body: fromReturned(value), isStream: false });
    } catch (err) {
      ctx.logger.error('the handler threw', { error: err });
      return withAbort({ body: fromThrown(err, opts.origin), isStream: false });
    }
  } finally {
    clearTimeout(timer);
    abandon.cancel();
  }
}

async function runStream(
  stream: AsyncIterable<unknown>,
  ctx: JobContext,
  opts: ExecuteOptions,
  abandoned: Promise<typeof ABANDONED>,
): Promise<Omit<JobOutcome, 'abortReason'>> {
  const iterator = stream[Symbol.asyncIterator]();
  const aggregate: unknown[] = [];
  try {
    for (;;) {
      const step = await Promise.race([iterator.next(), abandoned]);
      if (step === ABANDONED) {
        ctx.logger.error('the stream handler ignored the abort; reporting the job as failed');
        void iterator.return?.()?.catch(() => {});
        return { body: abandonedBody(ctx.signal, opts.abandonGraceMs), isStream: true };
      }
      if (step.done) break;
      const value = step.value;
      // rp-py: a yielded object with a truthy `error` ends the stream and fails the job.
      if (typeof value === 'object' && value !== null && !Array.isArray(value) && (value as { error?: unknown }).error) {
        await iterator.return?.().catch(() => {});
        return { body: { error: String((value as { error: unknown }).error) }, isStream: true };
      }
      if (opts.returnAggregateStream) aggregate.push(value);
      await opts.sendChunk({ output: value });
    }
  } catch (err) {
    ctx.logger.error('the stream handler threw', { error: err });
    return { body: fromStreamThrown(err), isStream: true };
  }
  return { body: { output: opts.returnAggregateStream ? aggregate : [] }, isStream: true };
}
