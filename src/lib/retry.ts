// A p-retry-shaped helper shared by input fetches, uploads and RunPod result posts.
import { delay } from './delay';

export interface RetryContext {
  readonly error: unknown;
  readonly attemptNumber: number;
  readonly retriesLeft: number;
}

export interface RetryOptions {
  /** Total attempts including the first. Default 5. */
  attempts?: number;
  /** First backoff delay. Default 500 ms. */
  minDelayMs?: number;
  /** Cap for one backoff delay. Default 30 s. */
  maxDelayMs?: number;
  /** Backoff growth per attempt. Default 2. */
  factor?: number;
  /** Randomise each delay between 50 % and 100 % of its value. Default true. */
  jitter?: boolean;
  /** Stop retrying once this much time has passed since the first attempt; delays are clamped to it. */
  maxRetryTimeMs?: number;
  /** Aborts the wait between attempts; no attempt starts once it has aborted. */
  signal?: AbortSignal;
  /** Return false to fail at once with the error. Default: always retry. */
  shouldRetry?: (ctx: RetryContext) => boolean;
  /** Called after each failed attempt that will be retried (logging). */
  onFailedAttempt?: (ctx: RetryContext & { delayMs: number }) => void;
  /** Injectable for tests. */
  now?: () => number;
  random?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export function backoffDelay(attemptNumber: number, opts: RetryOptions = {}): number {
  const min = opts.minDelayMs ?? 500;
  const max = opts.maxDelayMs ?? 30_000;
  const factor = opts.factor ?? 2;
  const base = Math.min(max, min * factor ** Math.max(0, attemptNumber - 1));
  if (opts.jitter === false) return base;
  const random = opts.random ?? Math.random;
  return Math.round(base * (0.5 + random() * 0.5));
}

export async function retry<T>(fn: (attemptNumber: number) => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const attempts = Math.max(1, opts.attempts ?? 5);
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? delay;
  const started = now();
  for (let attemptNumber = 1; ; attemptNumber++) {
    opts.signal?.throwIfAborted();
    try {
      return await fn(attemptNumber);
    } catch (error) {
      const ctx: RetryContext = Object.freeze({ error, attemptNumber, retriesLeft: attempts - attemptNumber });
      if (ctx.retriesLeft <= 0 || opts.signal?.aborted) throw error;
      if (opts.shouldRetry && !opts.shouldRetry(ctx)) throw error;
      let delayMs = backoffDelay(attemptNumber, opts);
      if (opts.maxRetryTimeMs !== undefined) {
        const left = opts.maxRetryTimeMs - (now() - started);
        if (left <= 0) throw error;
        delayMs = Math.min(delayMs, left);
      }
      opts.onFailedAttempt?.({ ...ctx, delayMs });
      await sleep(delayMs, opts.signal);
    }
  }
}
