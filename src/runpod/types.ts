// The runtime's public types: what a handler receives and may return.
import type { Logger } from '../lib/logger';

/** A job as RunPod hands it over; only `id` and `input` are guaranteed, other keys pass through. */
export interface RunpodJob {
  id: string;
  input: unknown;
  webhook?: string;
  /** RunPod's per-job bucket, passed through as sent: the handler validates it. */
  s3Config?: unknown;
  [key: string]: unknown;
}

export type WorkerMode = 'production' | 'test_input' | 'api';

export interface JobContext {
  /**
   * Aborts when RunPod stops the job or the local API cancels it (reason: WorkerError CANCELLED),
   * when the job timeout passes (reason: WorkerError TIMEOUT), or when shutdown runs out of grace
   * (reason: WorkerError TIMEOUT, details.reason = 'shutdown').
   */
  signal: AbortSignal;
  /** Ordered, throttled (latest wins), dropped once the final result is queued. */
  progress(update: unknown): void;
  /** Child logger carrying `requestId` = job id. */
  logger: Logger;
  mode: WorkerMode;
  /** In 'api' mode: GET `<filesBaseUrl>/<relative path>` serves a file from the `filesDir` option. */
  filesBaseUrl?: string;
}

/** A promise of the result, or an async iterable of stream chunks (RunPod's generator handlers). */
export type Handler = (job: RunpodJob, ctx: JobContext) => Promise<unknown> | AsyncIterable<unknown>;

/** The body posted to RunPod's job-done URL (rp-py `run_job` shapes). */
export interface ResultBody {
  output?: unknown;
  error?: unknown;
  stopPod?: true;
}

/** How a job ended, from the runtime's point of view. */
export interface JobOutcome {
  body: ResultBody;
  /** The handler was a stream: the final post carries `isStream=true`. */
  isStream: boolean;
  /** The runtime aborted the job for this reason (cancel, timeout, shutdown), if it did. */
  abortReason?: unknown;
}

/**
 * The runtime's settings, RunPod's environment parsed by the host application. Declared here so the
 * runtime depends on nothing outside src/runpod.
 */
export interface RuntimeSettings {
  /** RunPod's `RUNPOD_WEBHOOK_GET_JOB`: production mode iff set. */
  readonly jobTakeUrl: string | undefined;
  readonly jobDoneUrl: string | undefined;
  readonly jobStreamUrl: string | undefined;
  readonly pingUrl: string | undefined;
  readonly apiKey: string | undefined;
  /** `RUNPOD_POD_ID`: the worker id; a random one when unset. */
  readonly podId: string | undefined;
  /** `RUNPOD_POD_HOSTNAME`, named in error payloads; the machine's hostname when unset. */
  readonly podHostname: string | undefined;
  readonly pingIntervalMs: number;
  readonly endpointId: string | undefined;
  readonly concurrency: number;
  readonly refreshWorker: boolean;
  readonly shutdownGraceMs: number;
  /** A job's signal aborts with WorkerError TIMEOUT after it. */
  readonly jobTimeoutMs: number;
  /** What the host calls these settings, for messages that say what to change. */
  readonly names?: RuntimeSettingNames;
}

/** The host's names of the settings the runtime's messages point at (this worker: its environment variables). */
export interface RuntimeSettingNames {
  readonly jobTimeout?: string;
  readonly shutdownGrace?: string;
}

/** What the messages call a setting the host did not name. */
export const UNNAMED_SETTINGS: Required<RuntimeSettingNames> = {
  jobTimeout: 'the job timeout',
  shutdownGrace: 'the shutdown grace period',
};
