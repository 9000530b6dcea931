// Every interval and deadline the runtime uses. Production uses the defaults (RunPod's values where
// rp-py has one); tests pass short ones instead of faking sleeps.
import { DEFAULT_MAX_RESULT_BYTES } from './envelope';

export interface RuntimeTiming {
  /** Bound on one take or stop long poll (rp-py: 90 s). */
  pollTimeoutMs: number;
  /** Bound on one HTTP post to RunPod. */
  postTimeoutMs: number;
  /** Pause after a 400 "no job" answer (rp-py spins; we keep a small floor). */
  noJob400DelayMs: number;
  /** Pause after a 429 (rp-py: 5 s). */
  throttledDelayMs: number;
  /** Backoff for other take failures (rp-py retries at once). */
  takeBackoffMinMs: number;
  takeBackoffMaxMs: number;
  /** Pause after a stop poll with no ids (rp-py: 1 s) and after a failed one (1 s). */
  stopIdleDelayMs: number;
  stopErrorDelayMs: number;
  /** Gap between progress posts of one job. */
  progressIntervalMs: number;
  /** How long a final result post is retried before it is logged as lost. */
  resultRetryBudgetMs: number;
  chunkRetryBudgetMs: number;
  retryMinDelayMs: number;
  retryMaxDelayMs: number;
  /** After a job's signal aborts, how long its handler may take to settle before we report for it. */
  abandonGraceMs: number;
  /** Largest serialised result posted as is. */
  maxResultBytes: number;
  /** Local API: webhook attempts and the pause between them (RunPod: 3 attempts, 10 s). */
  webhookAttempts: number;
  webhookRetryDelayMs: number;
}

export const DEFAULT_TIMING: Readonly<RuntimeTiming> = Object.freeze({
  pollTimeoutMs: 90_000,
  postTimeoutMs: 30_000,
  noJob400DelayMs: 200,
  throttledDelayMs: 5_000,
  takeBackoffMinMs: 1_000,
  takeBackoffMaxMs: 30_000,
  stopIdleDelayMs: 1_000,
  stopErrorDelayMs: 1_000,
  progressIntervalMs: 1_000,
  resultRetryBudgetMs: 10 * 60_000,
  chunkRetryBudgetMs: 60_000,
  retryMinDelayMs: 1_000,
  retryMaxDelayMs: 30_000,
  abandonGraceMs: 10_000,
  maxResultBytes: DEFAULT_MAX_RESULT_BYTES,
  webhookAttempts: 3,
  webhookRetryDelayMs: 10_000,
});
