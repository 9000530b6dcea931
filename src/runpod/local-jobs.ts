// The local API's queue: jobs run in the background with the configured concurrency, through the
// same executeJob as production, and keep RunPod's statuses so clients see what they would see there.
import { randomUUID } from 'node:crypto';
import { closeInOrder } from '../lib/close-steps';
import { isWorkerError } from '../lib/errors';
import type { Logger } from '../lib/logger';
import { retry } from '../lib/retry';
import { serialiseResult } from './envelope';
import { executeJob } from './execute';
import { JobTracker } from './job-tracker';
import { UNNAMED_SETTINGS, type Handler, type RunpodJob } from './types';
import type { RuntimeTiming } from './timing';
import { webhookFetch, type WebhookGuard, type WebhookTarget } from './webhook-guard';
import { pinnedAgent } from '../lib/pinned-lookup';
import { runpodError } from './errors';

export type LocalStatus = 'IN_QUEUE' | 'IN_PROGRESS' | 'COMPLETED' | 'FAILED' | 'CANCELLED' | 'TIMED_OUT';
const FINAL: ReadonlySet<LocalStatus> = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT']);

export interface StatusObject {
  id: string;
  status: LocalStatus;
  delayTime?: number;
  executionTime?: number;
  output?: unknown;
  error?: unknown;
}

interface LocalJob {
  job: RunpodJob;
  status: LocalStatus;
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  output?: unknown;
  error?: unknown;
  stream: unknown[];
  /** Chunks already handed out by /stream (it returns only new ones). */
  streamSent: number;
  timeoutMs: number;
  /** Where timeoutMs came from, named in the TIMEOUT message. */
  timeoutSetting: string;
  waiters: Set<() => void>;
}

export interface LocalJobsOptions {
  handler: Handler;
  logger: Logger;
  concurrency: number;
  jobTimeoutMs: number;
  /** What the host calls the job timeout, for TIMEOUT messages. */
  jobTimeoutName?: string;
  timing: RuntimeTiming;
  returnAggregateStream: boolean;
  hostname: string;
  filesBaseUrl?: string;
  now?: () => number;
  /** How long a final job stays readable. Default 30 min: RunPod keeps /run results that long (/runsync
   * ones only 1 min; one retention here keeps the local API simple). */
  retentionMs?: number;
  /** Most final jobs kept; beyond it the oldest go first. Bounds memory whatever the retention. */
  maxFinishedJobs?: number;
  /** Asked again before a webhook is delivered (the local API asks it at submission). Default: any URL. */
  checkWebhook?: WebhookGuard;
}

const DEFAULT_RETENTION_MS = 30 * 60_000;
const DEFAULT_MAX_FINISHED_JOBS = 1_000;

export interface SubmitBody {
  input: unknown;
  webhook?: unknown;
  policy?: { executionTimeout?: unknown };
  [key: string]: unknown;
}

export class LocalJobs {
  private readonly jobs = new Map<string, LocalJob>();
  /** Final jobs by id → when they became final, oldest first (one retention keeps that order by expiry). */
  private readonly finished = new Map<string, number>();
  private readonly queue: string[] = [];
  /** Jobs whose handler runs (a cancelled job's handler may still be settling: its slot stays busy). */
  private readonly running = new JobTracker();
  private counts = { completed: 0, failed: 0, retried: 0 };
  private readonly now: () => number;
  private closed = false;
  private closing: Promise<void> | undefined;
  /** Webhook deliveries under way, each with its own stop signal: close() drains them like jobs. */
  private readonly deliveries = new JobTracker();

  constructor(private readonly opts: LocalJobsOptions) {
    this.now = opts.now ?? Date.now;
  }

  submit(body: SubmitBody): StatusObject {
    this.expire();
    const id = `local-${randomUUID()}`;
    const timeout = body.policy?.executionTimeout;
    const ownTimeout = typeof timeout === 'number' && timeout >= 1000;
    const job: RunpodJob = { ...body, id, input: body.input } as RunpodJob;
    const entry: LocalJob = {
      job,
      status: 'IN_QUEUE',
      createdAt: this.now(),
      stream: [],
      streamSent: 0,
      timeoutMs: ownTimeout ? timeout : this.opts.jobTimeoutMs,
      timeoutSetting: ownTimeout ? 'policy.executionTimeout' : (this.opts.jobTimeoutName ?? UNNAMED_SETTINGS.jobTimeout),
      waiters: new Set(),
    };
    this.jobs.set(id, entry);
    this.queue.push(id);
    // The answer to /run is IN_QUEUE, as on RunPod, even when a slot picks the job up at once.
    const queued = this.statusOf(entry);
    this.pump();
    return queued;
  }

  /** Undefined for unknown ids and for final jobs past their retention (RunPod answers 404 for both). */
  private get(id: string): LocalJob | undefined {
    this.expire();
    return this.jobs.get(id);
  }

  /** Forgets final jobs past the retention, then the oldest beyond the cap. */
  private expire(): void {
    const retentionMs = this.opts.retentionMs ?? DEFAULT_RETENTION_MS;
    const maxFinished = this.opts.maxFinishedJobs ?? DEFAULT_MAX_FINISHED_JOBS;
    const now = this.now();
    for (const [id, finishedAt] of this.finished) {
      if (finishedAt + retentionMs > now && this.finished.size <= maxFinished) break;
      // A cancelled job whose handler still settles stays: close() must find it to abort it.
      if (this.running.has(id)) continue;
      this.finished.delete(id);
      this.jobs.delete(id);
    }
  }

  status(id: string): StatusObject | undefined {
    const j = this.get(id);
    return j && this.statusOf(j);
  }

  private statusOf(j: LocalJob): StatusObject {
    const s: StatusObject = { id: j.job.id, status: j.status };
    if (j.startedAt !== undefined) s.delayTime = j.startedAt - j.createdAt;
    if (j.startedAt !== undefined && j.finishedAt !== undefined) s.executionTime = j.finishedAt - j.startedAt;
    if (j.output !== undefined) s.output = j.output;
    if (j.error !== undefined) s.error = j.error;
    return s;
  }

  /** Resolves the status once final or after `waitMs`, whichever is first. */
  async waitFinal(id: string, waitMs: number): Promise<StatusObject | undefined> {
    const deadline = this.now() + waitMs;
    for (;;) {
      const j = this.get(id);
      if (!j) return undefined;
      if (FINAL.has(j.status) || this.now() >= deadline) return this.statusOf(j);
      await this.waitChange(j, deadline - this.now());
    }
  }

  /** Stream chunks not yet handed out; waits up to `waitMs` for one when none is new and the job runs. */
  async streamSince(
    id: string,
    waitMs: number,
  ): Promise<{ status: LocalStatus; stream: { output: unknown }[]; error?: unknown } | undefined> {
    const j = this.get(id);
    if (!j) return undefined;
    if (j.streamSent >= j.stream.length && !FINAL.has(j.status)) await this.waitChange(j, waitMs);
    const fresh = j.stream.slice(j.streamSent).map((output) => ({ output }));
    j.streamSent = j.stream.length;
    return { status: j.status, stream: fresh, ...(j.error !== undefined ? { error: j.error } : {}) };
  }

  private waitChange(j: LocalJob, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        j.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      j.waiters.add(done);
    });
  }

  private changed(j: LocalJob): void {
    for (const w of [...j.waiters]) w();
  }

  cancel(id: string): StatusObject | undefined {
    const j = this.get(id);
    if (!j) return undefined;
    if (j.status === 'IN_QUEUE') {
      this.queue.splice(this.queue.indexOf(id), 1);
      this.finish(j, 'CANCELLED');
    } else if (j.status === 'IN_PROGRESS') {
      this.running.cancel(id, runpodError('CANCELLED', 'the job was cancelled through the local API'));
      // The slot stays busy until the handler settles; the status is final now, as on RunPod.
      this.finish(j, 'CANCELLED');
    }
    return this.statusOf(j);
  }

  /** RunPod's /retry: FAILED or TIMED_OUT jobs only, same id, back to IN_QUEUE. */
  retry(id: string): StatusObject | undefined | 'not-retryable' {
    const j = this.get(id);
    if (!j) return undefined;
    if (j.status !== 'FAILED' && j.status !== 'TIMED_OUT') return 'not-retryable';
    this.finished.delete(id);
    Object.assign(j, {
      status: 'IN_QUEUE',
      output: undefined,
      error: undefined,
      startedAt: undefined,
      finishedAt: undefined,
      stream: [],
      streamSent: 0,
      createdAt: this.now(),
    });
    this.counts.retried++;
    this.queue.push(id);
    const queued = this.statusOf(j);
    this.pump();
    return queued;
  }

  /** Removes every queued job (running ones are unaffected). */
  purge(): number {
    const ids = this.queue.splice(0);
    for (const id of ids) this.jobs.delete(id);
    return ids.length;
  }

  health(): Record<string, unknown> {
    const inProgress = this.running.size;
    const idle = Math.max(0, this.opts.concurrency - inProgress);
    return {
      jobs: {
        completed: this.counts.completed,
        failed: this.counts.failed,
        inProgress,
        inQueue: this.queue.length,
        retried: this.counts.retried,
      },
      workers: {
        idle: idle > 0 ? 1 : 0,
        initializing: 0,
        ready: idle > 0 ? 1 : 0,
        running: inProgress > 0 ? 1 : 0,
        throttled: 0,
        unhealthy: 0,
      },
    };
  }

  private pump(): void {
    while (!this.closed && this.running.size < this.opts.concurrency && this.queue.length > 0) {
      const id = this.queue.shift() as string;
      const j = this.jobs.get(id);
      if (!j) continue;
      void this.running.track(id, (signal) => this.run(j, signal)).finally(() => this.pump());
    }
  }

  private async run(j: LocalJob, signal: AbortSignal): Promise<void> {
    const { opts } = this;
    const logger = opts.logger.child({ requestId: j.job.id });
    j.status = 'IN_PROGRESS';
    j.startedAt = this.now();
    this.changed(j);
    const outcome = await executeJob({
      handler: opts.handler,
      job: j.job,
      ctx: {
        signal,
        progress: (update) => {
          if (j.status !== 'IN_PROGRESS') return;
          j.output = update; // RunPod shows progress as the job's output while it runs
          this.changed(j);
        },
        logger,
        mode: 'api',
        ...(opts.filesBaseUrl ? { filesBaseUrl: opts.filesBaseUrl } : {}),
      },
      timeoutMs: j.timeoutMs,
      timeoutSetting: j.timeoutSetting,
      origin: { hostname: opts.hostname, workerId: 'local' },
      returnAggregateStream: opts.returnAggregateStream,
      abandonGraceMs: opts.timing.abandonGraceMs,
      sendChunk: async (chunk) => {
        j.stream.push(chunk.output);
        this.changed(j);
      },
    });
    if (j.status !== 'IN_PROGRESS') return; // cancelled meanwhile: keep CANCELLED
    const { body } = serialiseResult(outcome.body, opts.timing.maxResultBytes);
    j.output = body.output;
    j.error = body.error;
    const timedOut = isWorkerError(outcome.abortReason, 'TIMEOUT');
    this.finish(j, timedOut ? 'TIMED_OUT' : body.error ? 'FAILED' : 'COMPLETED');
    logger.info(`job ${j.status}`);
  }

  private finish(j: LocalJob, status: LocalStatus): void {
    j.status = status;
    j.finishedAt = this.now();
    this.finished.delete(j.job.id);
    this.finished.set(j.job.id, j.finishedAt);
    if (j.startedAt === undefined) j.startedAt = j.finishedAt;
    if (status === 'COMPLETED') this.counts.completed++;
    if (status === 'FAILED' || status === 'TIMED_OUT') this.counts.failed++;
    this.changed(j);
    if (status !== 'CANCELLED' && typeof j.job.webhook === 'string' && j.job.webhook !== '') {
      const [url, status] = [j.job.webhook, this.statusOf(j)];
      void this.deliveries.track(randomUUID(), (stop) => this.deliverWebhook(url, status, stop));
    }
  }

  /** RunPod's webhook: POST the status object; a non-2xx answer is retried (3 attempts, 10 s apart). Never rejects. */
  private async deliverWebhook(url: string, status: StatusObject, stop: AbortSignal): Promise<void> {
    const logger = this.opts.logger.child({ requestId: status.id });
    let addresses: WebhookTarget['addresses'];
    try {
      addresses = (await this.opts.checkWebhook?.(new URL(url)))?.addresses;
    } catch (err) {
      logger.error('webhook refused; not delivered', { error: err });
      return;
    }
    // Every attempt connects to the addresses just checked, never to a later DNS answer.
    const dispatcher = addresses ? pinnedAgent(addresses) : undefined;
    try {
      await retry(
        async () => {
          const res = await webhookFetch(url, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify(status),
            signal: AbortSignal.any([AbortSignal.timeout(this.opts.timing.postTimeoutMs), stop]),
            ...(dispatcher ? { dispatcher } : {}),
          });
          await res.arrayBuffer();
          if (!res.ok) throw runpodError('INTERNAL', `webhook answered HTTP ${res.status}`, { details: { status: res.status } });
        },
        {
          attempts: this.opts.timing.webhookAttempts,
          minDelayMs: this.opts.timing.webhookRetryDelayMs,
          factor: 1,
          jitter: false,
          signal: stop,
        },
      );
      logger.info('webhook delivered');
    } catch (err) {
      logger.error('webhook could not be delivered', { error: err });
    } finally {
      await dispatcher?.close();
    }
  }

  /**
   * Stops starting jobs and drops the queue, gives running ones `graceMs` and then aborts them, and
   * gives the webhooks still being delivered `graceMs` more. One promise however often it is called;
   * a step that fails is logged and the next one still runs.
   */
  close(graceMs: number): Promise<void> {
    this.closing ??= closeInOrder(this.opts.logger, [
      [
        'stop starting jobs',
        () => {
          this.closed = true;
          this.purge();
        },
      ],
      [
        'drain the running jobs',
        () =>
          this.running.drain(graceMs, () => runpodError('TIMEOUT', 'the local API is shutting down', { details: { reason: 'shutdown' } })),
      ],
      [
        'deliver the webhooks under way',
        // Each delivery that is stopped logs that it was not delivered.
        () => this.deliveries.drain(graceMs, () => runpodError('CANCELLED', 'the local API shut down before the webhook was delivered')),
      ],
    ]).then(() => undefined);
    return this.closing;
  }
}
