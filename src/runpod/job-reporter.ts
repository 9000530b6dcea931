// One ordered sender per job: throttled progress (latest wins), stream chunks, then the final
// result, retried until RunPod accepts it or the budget runs out. rp-py posts progress from a thread
// per update (unordered) and drops a result after three failed posts; we do neither.
import { isWorkerError } from '../lib/errors';
import type { Logger } from '../lib/logger';
import { retry } from '../lib/retry';
import type { JobApi } from './job-api';
import { wireBody } from './wire-json';

export interface ReporterTiming {
  /** Minimum gap between two progress posts. */
  progressIntervalMs: number;
  /** Total time a final result post may be retried. */
  resultRetryBudgetMs: number;
  /** Total time one stream chunk may be retried. */
  chunkRetryBudgetMs: number;
  retryMinDelayMs: number;
  retryMaxDelayMs: number;
}

function shouldRetryPost(error: unknown): boolean {
  return isWorkerError(error) && error.retryable;
}

export class JobReporter {
  private pending: { update: unknown } | undefined;
  private inFlight: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastProgressAt = -Infinity;
  private finalQueued = false;

  constructor(
    private readonly jobId: string,
    private readonly api: JobApi,
    private readonly timing: ReporterTiming,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Queues a progress update; only the latest waiting one is sent. Ignored once the result is queued. */
  progress(update: unknown): void {
    if (this.finalQueued) return;
    this.pending = { update };
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.inFlight || !this.pending || this.finalQueued) return;
    const wait = Math.max(0, this.lastProgressAt + this.timing.progressIntervalMs - this.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.sendPending();
    }, wait);
  }

  private sendPending(): void {
    const next = this.pending;
    if (!next || this.finalQueued) return;
    this.pending = undefined;
    this.lastProgressAt = this.now();
    let text: string;
    try {
      text = wireBody({ status: 'IN_PROGRESS', output: next.update });
    } catch (err) {
      this.logger.warn('progress update is not JSON-serialisable; dropped', { error: err });
      return;
    }
    // One attempt: a failed progress post is superseded by the next update anyway.
    this.inFlight = this.api
      .postDone(this.jobId, text, false)
      .catch((err: unknown) => this.logger.warn('progress update not delivered', { error: err }))
      .finally(() => {
        this.inFlight = undefined;
        this.schedule();
      });
  }

  /** Posts one stream chunk (awaited by the stream loop, so chunks stay in order). */
  async chunk(text: string): Promise<void> {
    try {
      await retry(() => this.api.postStream(this.jobId, text), {
        attempts: Number.MAX_SAFE_INTEGER,
        maxRetryTimeMs: this.timing.chunkRetryBudgetMs,
        minDelayMs: this.timing.retryMinDelayMs,
        maxDelayMs: this.timing.retryMaxDelayMs,
        shouldRetry: (c) => shouldRetryPost(c.error),
      });
    } catch (err) {
      this.logger.error('stream chunk could not be delivered to RunPod; continuing with the next one', { error: err });
    }
  }

  /**
   * Drops waiting progress, lets a progress post already on the wire finish (order), then posts the
   * result with retries. Resolves true when RunPod accepted it.
   */
  async final(text: string, isStream: boolean): Promise<boolean> {
    this.finalQueued = true;
    this.pending = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.inFlight;
    try {
      await retry(() => this.api.postDone(this.jobId, text, isStream), {
        attempts: Number.MAX_SAFE_INTEGER,
        maxRetryTimeMs: this.timing.resultRetryBudgetMs,
        minDelayMs: this.timing.retryMinDelayMs,
        maxDelayMs: this.timing.retryMaxDelayMs,
        shouldRetry: (c) => shouldRetryPost(c.error),
        onFailedAttempt: (c) =>
          this.logger.warn('job result not accepted yet; retrying', { attempt: c.attemptNumber, delayMs: c.delayMs, error: c.error }),
      });
      return true;
    } catch (err) {
      this.logger.error('JOB RESULT LOST: RunPod did not accept the result; the job will stay IN_PROGRESS until its execution timeout', {
        error: err,
        bytes: Buffer.byteLength(text, 'utf8'),
      });
      return false;
    }
  }
}
