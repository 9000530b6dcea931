// The one entry point the host application calls: picks the mode from argv and config, runs until done or
// SIGTERM, and resolves the process exit code (the caller exits with it).
import os from 'node:os';
import { closeInOrder } from '../lib/close-steps';
import { toWorkerError } from '../lib/errors';
import type { Logger } from '../lib/logger';
import { parseArgs, type WorkerArgs } from './args';
import { startLocalApi, type LocalApiOptions } from './local-api';
import { runLocalTest } from './local-test';
import { ProductionWorker } from './production-worker';
import { createHttpTransport, fetchTransport } from './http-transport';
import { DEFAULT_TIMING, type RuntimeTiming } from './timing';
import type { Handler, RuntimeSettings, WorkerMode } from './types';
import type { WebhookGuard } from './webhook-guard';
import { listenForShutdown } from './shutdown-signal';

export interface RunWorkerOptions {
  config: RuntimeSettings;
  handler: Handler;
  logger: Logger;
  /** Arguments after the script name: `process.argv.slice(2)`. */
  argv: readonly string[];
  /** Where ./test_input.json is looked up. Default process.cwd(). */
  cwd?: string;
  /** Replaces node:http(s) for RunPod's job API (the local API's webhooks go through undici: webhook-guard.ts). */
  fetch?: typeof fetch;
  /** Local API: folder served under `<url>/files/` (ctx.filesBaseUrl points there). */
  filesDir?: string;
  /** Runs once, after jobs have drained, before runWorker resolves (e.g. stop a child process). */
  onShutdown?: () => Promise<void>;
  /** Stream handlers: post every chunk again in the final result (rp-py `return_aggregate_stream`). */
  returnAggregateStream?: boolean;
  /** Aborting it shuts down like SIGTERM (tests, embedding). */
  shutdownSignal?: AbortSignal;
  /** The application's name, first in the User-Agent of requests to RunPod. Default `node-runpod-worker`. */
  appName?: string;
  /** Listen to SIGTERM/SIGINT on `process`. Default true. */
  handleSignals?: boolean;
  /** Overrides of intervals and deadlines (tests use short ones). */
  timing?: Partial<RuntimeTiming>;
  /** One-shot mode prints its result here. Default process.stdout. */
  print?: (text: string) => void;
  /** Called with the local API's base URL once it listens. */
  onListening?: (url: string) => void;
  /** Local API: the handler's dependencies' state, merged into /health. */
  health?: LocalApiOptions['health'];
  /** Local API: where a job's webhook may be POSTed (createWebhookGuard). Default: anywhere. */
  checkWebhook?: WebhookGuard;
  /**
   * Called once the worker is open for jobs: in production when the first job take is on its way
   * (work done here overlaps RunPod's answer), in the local API once it listens, in one-shot mode
   * before the job runs. Not called when it shuts down first.
   */
  onReady?: () => void;
}

const userAgent = (appName: string): string => `${appName} (RunPod worker protocol; Node ${process.version})`;

/** Which mode the parsed flags and config select (rp-py order: serve API, then test input / no take URL, then production). */
export function selectMode(args: Pick<WorkerArgs, 'serveApi' | 'testInput'>, config: Pick<RuntimeSettings, 'jobTakeUrl'>): WorkerMode {
  if (args.serveApi) return 'api';
  if (args.testInput !== undefined || !config.jobTakeUrl) return 'test_input';
  return 'production';
}

export async function runWorker(opts: RunWorkerOptions): Promise<number> {
  // RunPod's log format: every line carries requestId (null outside a job) when on an endpoint.
  const logger = opts.config.endpointId ? opts.logger.child({ requestId: null }) : opts.logger;
  const shutdown = listenForShutdown({ linked: opts.shutdownSignal, processSignals: opts.handleSignals !== false, logger });
  let mode: ModeRunner | undefined;
  let code = 1;
  try {
    mode = createMode(opts, logger);
    code = await runUntil(mode, shutdown.signal);
  } catch (err) {
    logger.error('the worker stopped on an error', { error: toWorkerError(err) });
  }
  // The mode is closed again (close is idempotent) so that one which ended on its own or failed
  // releases everything too; the process signals stay handled until then.
  await closeInOrder(logger, [
    ['close the mode', () => mode?.close()],
    ['stop listening for shutdown signals', () => shutdown.dispose()],
    ['onShutdown', () => opts.onShutdown?.()],
  ]);
  return code;
}

/** A mode as runWorker drives it: `run()` until done (the exit code); `close()` on SIGTERM, idempotent. */
interface ModeRunner {
  run(): Promise<number>;
  close(): Promise<void>;
}

const MODES: Record<WorkerMode, (ctx: ModeContext) => ModeRunner> = {
  test_input: testInputMode,
  api: apiMode,
  production: productionMode,
};

/** Reads the flags and makes the mode they and the config select. */
function createMode(opts: RunWorkerOptions, logger: Logger): ModeRunner {
  const args = parseArgs(opts.argv);
  if (args.debugger) logger.warn('--rp_debugger is not supported by this worker; ignored');
  const selected = selectMode(args, opts.config);
  logger.info('worker mode', { mode: selected });
  const timing: RuntimeTiming = { ...DEFAULT_TIMING, ...opts.timing };
  return MODES[selected]({ opts, args, logger, timing, hostname: opts.config.podHostname ?? os.hostname() });
}

/** Runs the mode, closing it once `signal` aborts (at once when it already has). */
async function runUntil(mode: ModeRunner, signal: AbortSignal): Promise<number> {
  // runWorker awaits close() again afterwards and logs a failure there; here it must not go unhandled.
  const onAbort = (): void => void mode.close().catch(() => {});
  if (signal.aborted) onAbort();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await mode.run();
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

interface ModeContext {
  opts: RunWorkerOptions;
  args: WorkerArgs;
  logger: Logger;
  timing: RuntimeTiming;
  /** Named in error payloads. */
  hostname: string;
}

/** One job from --test_input or ./test_input.json, its result printed. */
function testInputMode({ opts, args, logger, timing, hostname }: ModeContext): ModeRunner {
  const stop = new AbortController();
  return {
    run: () => {
      opts.onReady?.();
      return runLocalTest({
        handler: opts.handler,
        logger,
        testInput: args.testInput,
        cwd: opts.cwd ?? process.cwd(),
        jobTimeoutMs: opts.config.jobTimeoutMs,
        jobTimeoutName: opts.config.names?.jobTimeout,
        timing,
        returnAggregateStream: opts.returnAggregateStream ?? false,
        hostname,
        print: opts.print ?? ((t) => process.stdout.write(t)),
        shutdownSignal: stop.signal,
      });
    },
    close: async () => stop.abort(),
  };
}

/** The local API (--rp_serve_api) until close(), then its jobs drained within the grace period. */
function apiMode({ opts, args, logger, timing, hostname }: ModeContext): ModeRunner {
  const { config } = opts;
  let requestClose!: () => void;
  const closeRequested = new Promise<void>((resolve) => (requestClose = resolve));
  return {
    run: async () => {
      const api = await startLocalApi({
        host: args.apiHost,
        port: args.apiPort,
        handler: opts.handler,
        logger,
        concurrency: args.apiConcurrency ?? config.concurrency,
        jobTimeoutMs: config.jobTimeoutMs,
        jobTimeoutName: config.names?.jobTimeout,
        timing,
        returnAggregateStream: opts.returnAggregateStream ?? false,
        hostname,
        ...(opts.filesDir ? { filesDir: opts.filesDir } : {}),
        ...(opts.health ? { health: opts.health } : {}),
        ...(opts.checkWebhook ? { checkWebhook: opts.checkWebhook } : {}),
      });
      try {
        opts.onListening?.(api.url);
        opts.onReady?.();
        await closeRequested;
      } finally {
        // Also when a callback above threw: the server and its jobs never outlive the mode.
        await api.close(config.shutdownGraceMs);
      }
      return 0;
    },
    close: async () => requestClose(),
  };
}

/** RunPod's job API: take, run, post, heartbeat. */
function productionMode({ opts, logger, timing, hostname }: ModeContext): ModeRunner {
  const worker = new ProductionWorker({
    config: opts.config,
    hostname,
    handler: opts.handler,
    logger,
    transport: opts.fetch ? fetchTransport(opts.fetch) : createHttpTransport(),
    timing,
    returnAggregateStream: opts.returnAggregateStream ?? false,
    userAgent: userAgent(opts.appName ?? 'node-runpod-worker'),
    ...(opts.onReady ? { onReady: opts.onReady } : {}),
  });
  return { run: () => worker.run(), close: () => worker.close() };
}
