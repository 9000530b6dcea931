// The one entry point the host application calls: picks the mode from argv and config, runs until done or
// SIGTERM, and resolves the process exit code (the caller exits with it).
import os from 'node:os';
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

export interface RunWorkerOptions {
  config: RuntimeSettings;
  handler: Handler;
  logger: Logger;
  /** Arguments after the script name: `process.argv.slice(2)`. */
  argv: readonly string[];
  /** Where ./test_input.json is looked up. Default process.cwd(). */
  cwd?: string;
  /** Replaces node:http(s) for RunPod's job API and global fetch for the local API's webhooks. */
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
  const { config } = opts;
  // RunPod's log format: every line carries requestId (null outside a job) when on an endpoint.
  const logger = config.endpointId ? opts.logger.child({ requestId: null }) : opts.logger;
  const timing: RuntimeTiming = { ...DEFAULT_TIMING, ...opts.timing };
  const shutdown = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    logger.info(`received ${signal}`);
    shutdown.abort();
  };
  const linked = opts.shutdownSignal;
  const onLinked = (): void => shutdown.abort();
  linked?.addEventListener('abort', onLinked, { once: true });
  if (linked?.aborted) shutdown.abort();
  if (opts.handleSignals !== false) {
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }
  const onShutdown = (): void => mode?.close();
  let mode: ModeRunner | undefined;
  try {
    const args = parseArgs(opts.argv);
    if (args.debugger) logger.warn('--rp_debugger is not supported by this worker; ignored');
    const selected = selectMode(args, config);
    logger.info('worker mode', { mode: selected });
    const common = { opts, args, logger, timing, hostname: config.podHostname ?? os.hostname() };
    mode = selected === 'test_input' ? testInputMode(common) : selected === 'api' ? apiMode(common) : productionMode(common);
    if (shutdown.signal.aborted) mode.close();
    shutdown.signal.addEventListener('abort', onShutdown, { once: true });
    return await mode.run();
  } catch (err) {
    logger.error('the worker stopped on an error', { error: toWorkerError(err) });
    return 1;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    linked?.removeEventListener('abort', onLinked);
    shutdown.signal.removeEventListener('abort', onShutdown);
    if (opts.onShutdown) {
      try {
        await opts.onShutdown();
      } catch (err) {
        logger.error('onShutdown failed', { error: err });
      }
    }
  }
}

/** A mode as runWorker drives it: `run()` until done (the exit code), `close()` on SIGTERM. */
interface ModeRunner {
  run(): Promise<number>;
  close(): void;
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
    close: () => stop.abort(),
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
        fetch: opts.fetch ?? globalThis.fetch,
        returnAggregateStream: opts.returnAggregateStream ?? false,
        hostname,
        ...(opts.filesDir ? { filesDir: opts.filesDir } : {}),
        ...(opts.health ? { health: opts.health } : {}),
        ...(opts.checkWebhook ? { checkWebhook: opts.checkWebhook } : {}),
      });
      opts.onListening?.(api.url);
      opts.onReady?.();
      await closeRequested;
      await api.close(config.shutdownGraceMs);
      return 0;
    },
    close: () => requestClose(),
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
  return { run: () => worker.run(), close: () => void worker.close() };
}
