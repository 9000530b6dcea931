// Production mode: take loop, job runs, stop-signal loop and heartbeat under one shutdown
// (rp-py `JobScaler`). `run()` and `close()` are safe to call twice (BullMQ's Worker lifecycle).
import { randomUUID } from 'node:crypto';
import { closeInOrder } from '../lib/close-steps';
import { delay } from '../lib/delay';
import type { Logger } from '../lib/logger';
import { backoffDelay } from '../lib/retry';
import { serialiseResult } from './envelope';
import { executeJob } from './execute';
import { Heartbeat } from './heartbeat';
import type { HttpTransport } from './http-transport';
import { JobApi } from './job-api';
import { JobReporter } from './job-reporter';
import { JobTracker } from './job-tracker';
import { pingUrl } from './urls';
import { wireBody } from './wire-json';
import { UNNAMED_SETTINGS, type Handler, type RunpodJob, type RuntimeSettings } from './types';
import type { RuntimeTiming } from './timing';
import { runpodError } from './errors';

export interface ProductionWorkerOptions {
  config: RuntimeSettings;
  /** Named in error payloads (runWorker resolves it once). */
  hostname: string;
  handler: Handler;
  logger: Logger;
  transport: HttpTransport;
  timing: RuntimeTiming;
  returnAggregateStream: boolean;
  userAgent: string;
  /** Called once, when the first job take is on its way (see RunWorkerOptions.onReady). */
  onReady?: () => void;
}

/** Resolves after `ms`, or early (without error) when the signal aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return delay(ms, signal).catch(() => {});
}

export class ProductionWorker {
  readonly workerId: string;
  private readonly api: JobApi;
  /** Jobs RunPod stopped stay here until their handler settles, but are no longer pinged for. */
  private readonly active = new JobTracker((ids) => this.heartbeat?.setJobs(ids));
  private readonly takeController = new AbortController();
  private readonly stopPollController = new AbortController();
  private heartbeat: Heartbeat | undefined;
  private running: Promise<number> | undefined;
  private closing: Promise<void> | undefined;
  /** The loops close() stops and waits for (settled until run() starts them). */
  private takeLoopDone: Promise<void> = Promise.resolve();
  private stopLoopDone: Promise<void> = Promise.resolve();

  constructor(private readonly opts: ProductionWorkerOptions) {
    const { config } = opts;
    if (!config.jobTakeUrl) throw runpodError('CONFIG_INVALID', 'production mode needs RUNPOD_WEBHOOK_GET_JOB');
    this.workerId = config.podId ?? randomUUID();
    this.api = new JobApi({
      takeTemplate: config.jobTakeUrl,
      doneTemplate: config.jobDoneUrl,
      streamTemplate: config.jobStreamUrl,
      apiKey: config.apiKey,
      workerId: this.workerId,
      transport: opts.transport,
      logger: opts.logger,
      userAgent: opts.userAgent,
      pollTimeoutMs: opts.timing.pollTimeoutMs,
      postTimeoutMs: opts.timing.postTimeoutMs,
    });
  }

  /** Runs until close() (SIGTERM) or a refresh_worker exit; resolves the exit code. After close(), starts nothing. */
  run(): Promise<number> {
    this.running ??= this.closing ? this.closing.then(() => 0) : this.runLoops();
    return this.running;
  }

  private async runLoops(): Promise<number> {
    const { config, logger } = this.opts;
    logger.info('worker started', { workerId: this.workerId, concurrency: config.concurrency });
    // The heartbeat thread boots beside the main thread and pings as soon as it can (as rp-py's
    // process does). The first take goes out next; the stop poll and the host's onReady work
    // (loading the app) start once it is on its way, while RunPod holds the poll.
    this.startHeartbeat();
    let started = false;
    const ready = (): void => {
      if (started || this.takeController.signal.aborted) return;
      started = true;
      if (!this.api.stopUrl) logger.warn('job stop channel disabled: the job-take URL has no /job-take/ segment');
      this.stopLoopDone = this.stopLoop();
      this.opts.onReady?.();
    };
    this.takeLoopDone = this.takeLoop(ready);
    try {
      // The take loop ends only when close() stops it, or on a bug; either way everything is released.
      await this.takeLoopDone;
    } finally {
      await this.close();
    }
    return 0;
  }

  private startHeartbeat(): void {
    const { config, logger } = this.opts;
    if (!(config.apiKey && config.podId && config.pingUrl)) {
      logger.warn('heartbeat disabled: RUNPOD_WEBHOOK_PING, RUNPOD_AI_API_KEY and RUNPOD_POD_ID are all needed');
      return;
    }
    this.heartbeat = new Heartbeat({
      url: pingUrl(config.pingUrl, this.workerId),
      apiKey: config.apiKey,
      intervalMs: config.pingIntervalMs,
      userAgent: this.opts.userAgent,
      logger,
    });
  }

  /**
   * Graceful shutdown, one promise however often it is called: stop taking, let the running jobs
   * finish (each posts its own result) within the grace period and abort the rest, then stop the
   * stop poll and the heartbeat. A step that fails is logged and the next one still runs.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const { logger, config } = this.opts;
    logger.info('shutting down: no new jobs', { running: this.active.size, graceMs: config.shutdownGraceMs });
    await closeInOrder(logger, [
      [
        'stop taking jobs',
        () => {
          // Aborts the take long poll and any backoff at once; jobs that poll brings are still run.
          this.takeController.abort(runpodError('CANCELLED', 'worker shutting down'));
          return this.takeLoopDone;
        },
      ],
      ['drain the running jobs', () => this.drainJobs()],
      [
        'stop the job stop poll',
        () => {
          this.stopPollController.abort();
          return this.stopLoopDone;
        },
      ],
      ['stop the heartbeat', () => this.heartbeat?.stop()],
    ]);
    logger.info('worker stopped');
  }

  /** Waits for the running jobs (and their result posts) within the grace period; aborts those still running after it. */
  private drainJobs(): Promise<void> {
    const { logger, config } = this.opts;
    const grace = config.names?.shutdownGrace ?? UNNAMED_SETTINGS.shutdownGrace;
    return this.active.drain(
      config.shutdownGraceMs,
      () =>
        runpodError('TIMEOUT', `the worker is shutting down and the job did not finish within ${grace} (${config.shutdownGraceMs} ms)`, {
          details: { reason: 'shutdown' },
        }),
      (id) => logger.warn('shutdown grace period over; aborting the job', { requestId: id }),
    );
  }

  private need(): number {
    return this.opts.config.concurrency - this.active.size;
  }

  /** `ready` runs once the first take is on its way (or, if it could not be sent, has failed). */
  private async takeLoop(ready: () => void): Promise<void> {
    const { logger, timing } = this.opts;
    const signal = this.takeController.signal;
    let failures = 0;
    while (!signal.aborted) {
      await this.active.waitForSlot(this.opts.config.concurrency, signal);
      if (signal.aborted) break;
      const result = await this.api.take(this.need(), this.active.size > 0, signal, ready);
      ready();
      switch (result.kind) {
        case 'jobs':
          failures = 0;
          // Jobs that arrive while shutting down are still run and reported (rp-py may lose them).
          for (const job of result.jobs) this.start(job);
          break;
        case 'none':
          failures = 0;
          break;
        case 'none-400':
          failures = 0;
          await pause(timing.noJob400DelayMs, signal);
          break;
        case 'throttled':
          logger.warn('job take throttled (429); waiting');
          await pause(timing.throttledDelayMs, signal);
          break;
        case 'failed': {
          if (signal.aborted) break;
          failures++;
          const wait = backoffDelay(failures, { minDelayMs: timing.takeBackoffMinMs, maxDelayMs: timing.takeBackoffMaxMs });
          logger.warn('job take failed; backing off', { error: result.error, attempt: failures, delayMs: wait });
          await pause(wait, signal);
          break;
        }
      }
    }
  }

  private async stopLoop(): Promise<void> {
    if (!this.api.stopUrl) return;
    const { logger, timing } = this.opts;
    const signal = this.stopPollController.signal;
    while (!signal.aborted) {
      const result = await this.api.pollStop(signal);
      if (signal.aborted) break;
      if (result.kind === 'ids') {
        for (const id of result.ids) this.stopJob(id);
        if (result.ids.length === 0) await pause(timing.stopIdleDelayMs, signal);
      } else if (result.kind === 'throttled') {
        await pause(timing.throttledDelayMs, signal);
      } else {
        logger.warn('job stop poll failed', { error: result.error });
        await pause(timing.stopErrorDelayMs, signal);
      }
    }
  }

  private stopJob(id: string): void {
    this.active.cancel(id, runpodError('CANCELLED', 'RunPod stopped the job (cancelled or timed out)'), () =>
      this.opts.logger.info('RunPod stopped the job; aborting it', { requestId: id }),
    );
  }

  private start(job: RunpodJob): void {
    if (this.active.has(job.id)) {
      this.opts.logger.warn('job taken twice while still running; ignoring the duplicate', { requestId: job.id });
      return;
    }
    void this.active.track(job.id, (signal) => this.runJob(job, signal));
  }

  private async runJob(job: RunpodJob, signal: AbortSignal): Promise<void> {
    const { config, timing } = this.opts;
    const logger = this.opts.logger.child({ requestId: job.id });
    const reporter = new JobReporter(job.id, this.api, timing, logger);
    logger.info('job started');
    const outcome = await executeJob({
      handler: this.opts.handler,
      job,
      ctx: { signal, progress: (u) => reporter.progress(u), logger, mode: 'production' },
      timeoutMs: config.jobTimeoutMs,
      timeoutSetting: config.names?.jobTimeout ?? UNNAMED_SETTINGS.jobTimeout,
      origin: { hostname: this.opts.hostname, workerId: this.workerId },
      returnAggregateStream: this.opts.returnAggregateStream,
      abandonGraceMs: timing.abandonGraceMs,
      sendChunk: (chunk) => reporter.chunk(wireBody(chunk)),
    });
    // RunPod asked to stop it: nothing is posted (as rp-py).
    if (this.active.isCancelled(job.id)) {
      logger.info('job stopped by RunPod; nothing posted');
      return;
    }
    const body = config.refreshWorker ? { ...outcome.body, stopPod: true as const } : outcome.body;
    const { text, body: sent } = serialiseResult(body, timing.maxResultBytes);
    const accepted = await reporter.final(text, outcome.isStream);
    logger.info(sent.error ? 'job failed' : 'job completed', { posted: accepted, ...(sent.stopPod ? { stopPod: true } : {}) });
    // REFRESH_WORKER: RunPod replaces this worker after the job; exit cleanly once the post settled.
    if (config.refreshWorker) void this.close();
  }
}
