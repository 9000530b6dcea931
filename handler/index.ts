// The worker's main (bundled as dist/handler-main.cjs; dist/handler.cjs, handler/launcher.cjs, checks
// the Node version and calls start()): config → RunPod runtime, then the app. Loading this module
// starts nothing.
import { loadConfig } from '../src/config';
import { formatError } from '../src/lib/errors';
import { createLogger } from '../src/lib/logger';
import { isPrivateAddress } from '../src/media/address-guard';
import { createWebhookGuard, runWorker, type Handler } from '../src/runpod';
import { bucketFromConfig } from '../src/s3/credentials';
import type { App } from './app';

async function main(): Promise<number> {
  const config = loadConfig(process.env);
  const logger = createLogger({ level: config.logLevel });
  logger.info('steadydancer-worker starting', { mode: config.mode, node: process.version });
  // What can still be wrong in the settings is refused before the first job is taken: a half-configured
  // bucket stops the worker with CONFIG_INVALID naming what is missing.
  const workerBucket = bucketFromConfig(config.bucket);

  // The app (ComfyUI supervisor, job pipeline, input fetcher, video store and the AWS SDK: most of
  // the bundle) is loaded when the runtime opens for jobs: in production once the first job take is
  // on its way, so that loading it overlaps RunPod's answer. ComfyUI still starts within
  // milliseconds. A job that arrives first waits for it.
  let app: Promise<App> | undefined;
  const loadApp = (): Promise<App> => (app ??= import('./app').then(({ createApp }) => createApp(config, logger, workerBucket)));
  const stop = new AbortController();
  let broken = false;
  const onReady = (): void => {
    loadApp().catch((err: unknown) => {
      broken = true;
      logger.error('the worker could not set itself up; shutting down', { error: err });
      stop.abort();
    });
  };
  // The app's handler returns a promise (never a stream), so awaiting the app first changes nothing.
  const handler: Handler = async (job, ctx) => (await loadApp()).handler(job, ctx);

  const code = await runWorker({
    config: config.runpod,
    appName: 'steadydancer-worker',
    handler,
    logger,
    argv: process.argv.slice(2),
    filesDir: config.paths.outputDir,
    onReady,
    shutdownSignal: stop.signal,
    onShutdown: async () => (await app?.catch(() => undefined))?.close(),
    // Local API /health: ComfyUI's state once the app is loaded.
    health: async () => (app ? (await app).health() : { state: 'initializing' }),
    // The local API refuses webhooks into this network, as input URLs are refused.
    checkWebhook: createWebhookGuard({
      allowPrivate: config.media.allowPrivateUrls,
      allowPrivateName: 'ALLOW_PRIVATE_URLS',
      isPrivateAddress,
    }),
  });
  return broken ? 1 : code;
}

/** Runs the worker and exits with its code. */
export function start(): void {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${formatError(err)}\n`);
      process.exit(1);
    },
  );
}
