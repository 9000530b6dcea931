// Shared set-up for the runtime tests: a config pointing at the fake job API, short timings,
// a logger that keeps its lines, and a handle on one running runWorker.
import { loadConfig } from '../../src/config';
import { createLogger, type Logger } from '../../src/lib/logger';
import { runWorker, type Handler, type RunWorkerOptions, type RuntimeSettings, type RuntimeTiming } from '../../src/runpod';
import type { FakeJobApi } from '../fakes/runpod-job-api';

export const API_KEY = 'rp-key-123';

export const FAST: Partial<RuntimeTiming> = {
  pollTimeoutMs: 5_000,
  postTimeoutMs: 2_000,
  noJob400DelayMs: 80,
  throttledDelayMs: 300,
  takeBackoffMinMs: 20,
  takeBackoffMaxMs: 100,
  stopIdleDelayMs: 20,
  stopErrorDelayMs: 20,
  progressIntervalMs: 200,
  resultRetryBudgetMs: 3_000,
  chunkRetryBudgetMs: 1_000,
  retryMinDelayMs: 20,
  retryMaxDelayMs: 100,
  abandonGraceMs: 300,
  webhookRetryDelayMs: 20,
};

/** Settings for the local modes (one-shot, local API): no RunPod URLs, so nothing is taken from RunPod. */
export function localConfig(over: Partial<RuntimeSettings> = {}): RuntimeSettings {
  return {
    jobTakeUrl: undefined,
    jobDoneUrl: undefined,
    jobStreamUrl: undefined,
    pingUrl: undefined,
    apiKey: undefined,
    podId: undefined,
    podHostname: undefined,
    pingIntervalMs: 1000,
    endpointId: undefined,
    concurrency: 1,
    refreshWorker: false,
    shutdownGraceMs: 1000,
    jobTimeoutMs: 10_000,
    ...over,
  };
}

export function prodConfig(api: FakeJobApi, over: Partial<RuntimeSettings> = {}): RuntimeSettings {
  return {
    jobTakeUrl: api.templates.jobTakeUrl,
    jobDoneUrl: api.templates.jobDoneUrl,
    jobStreamUrl: api.templates.jobStreamUrl,
    pingUrl: undefined,
    apiKey: API_KEY,
    podId: 'wrk1',
    podHostname: 'h1',
    pingIntervalMs: 1000,
    endpointId: undefined,
    concurrency: 1,
    refreshWorker: false,
    shutdownGraceMs: 5_000,
    jobTimeoutMs: 10_000,
    names: loadConfig({}).runpod.names,
    ...over,
  };
}

export interface LogLine {
  level: string;
  message: string;
  requestId?: string | null;
  [key: string]: unknown;
}

export function captureLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  return { lines, logger: createLogger({ level: 'debug', write: (l) => lines.push(JSON.parse(l) as LogLine) }) };
}

export interface Running {
  exit: Promise<number>;
  lines: LogLine[];
  /** Graceful shutdown (as SIGTERM) and the exit code. */
  stop(): Promise<number>;
}

export function startWorker(handler: Handler, config: RuntimeSettings, extra: Partial<RunWorkerOptions> = {}): Running {
  const { logger, lines } = captureLogger();
  const shutdown = new AbortController();
  const exit = runWorker({
    config,
    handler,
    logger,
    argv: [],
    handleSignals: false,
    shutdownSignal: shutdown.signal,
    timing: FAST,
    ...extra,
  });
  return {
    exit,
    lines,
    stop: () => {
      shutdown.abort();
      return exit;
    },
  };
}

/** A promise plus its resolver, for handlers that wait on the test. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Resolves when the signal aborts (handlers that wait for cancel). */
export function aborted(signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(signal.reason);
    signal.addEventListener('abort', () => resolve(signal.reason), { once: true });
  });
}
