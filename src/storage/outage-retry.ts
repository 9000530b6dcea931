// Retrying an upload through an S3 outage. The budget is time without progress: it starts at the
// first failure and is reset whenever any request succeeds (a stored part, a created upload), so a
// slow but working upload is never cut, while S3 answering 503 for longer than the budget is.
// A server that takes connections and never answers is given up sooner: after a few attempts in a
// row that each timed out (the per-request idle timeout bounds every one of them).
import { delay } from '../lib/delay';
import { backoffDelay } from '../lib/retry';
import { classifyS3Error, type S3Failure } from '../s3';

export interface OutageRetryOptions {
  /** How long failures may go on with no request succeeding; 0 = one attempt only. */
  budgetMs: number;
  /** Attempts in a row that got no answer at all before giving up. */
  maxTimeoutsInARow: number;
  /** First backoff; it doubles per failure, with jitter, up to maxDelayMs. */
  minDelayMs: number;
  maxDelayMs: number;
  /** The job's signal: aborts the wait at once (and the attempt, which gets it too). */
  signal?: AbortSignal;
  onFailedAttempt?: (ctx: FailedAttempt) => void;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
}

export interface FailedAttempt {
  error: unknown;
  failure: S3Failure;
  attemptNumber: number;
  /** Since the first failure with no success after it. */
  failingForMs: number;
  delayMs: number;
}

/** Why retrying stopped, for the final error message. */
export class OutageGaveUp extends Error {
  override readonly name = 'OutageGaveUp';
  constructor(
    readonly last: unknown,
    readonly attempts: number,
    readonly failingForMs: number,
    readonly reason: 'not_retryable' | 'budget' | 'no_answer',
  ) {
    super('upload retries ended', { cause: last });
  }
}

/**
 * Runs `attempt` until it resolves. Each attempt gets `progress`, to call when one of its requests
 * succeeded. Throws the signal's reason when aborted, else OutageGaveUp.
 */
export async function retryThroughOutage<T>(attempt: (progress: () => void) => Promise<T>, opts: OutageRetryOptions): Promise<T> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? delay;
  let failingSince: number | undefined;
  let failuresInRun = 0;
  let timeoutsInARow = 0;
  for (let attemptNumber = 1; ; attemptNumber++) {
    opts.signal?.throwIfAborted();
    let progressed = false;
    try {
      return await attempt(() => {
        progressed = true;
      });
    } catch (error) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      const failure = classifyS3Error(error);
      if (progressed) {
        failingSince = undefined;
        failuresInRun = 0;
        timeoutsInARow = 0;
      }
      failingSince ??= now();
      failuresInRun++;
      timeoutsInARow = failure.timeout ? timeoutsInARow + 1 : 0;
      const failingForMs = now() - failingSince;
      if (!failure.retryable) throw new OutageGaveUp(error, attemptNumber, failingForMs, 'not_retryable');
      if (timeoutsInARow >= opts.maxTimeoutsInARow) throw new OutageGaveUp(error, attemptNumber, failingForMs, 'no_answer');
      const left = opts.budgetMs - failingForMs;
      if (left <= 0) throw new OutageGaveUp(error, attemptNumber, failingForMs, 'budget');
      const delayMs = Math.min(
        left,
        backoffDelay(failuresInRun, {
          minDelayMs: opts.minDelayMs,
          maxDelayMs: opts.maxDelayMs,
          ...(opts.random ? { random: opts.random } : {}),
        }),
      );
      opts.onFailedAttempt?.({ error, failure, attemptNumber, failingForMs, delayMs });
      await sleep(delayMs, opts.signal);
    }
  }
}
