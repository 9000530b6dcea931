// The worker's main (bundled as dist/handler-main.cjs; dist/handler.cjs, handler/launcher.cjs, checks
// the Node version and calls start()): config → parts → RunPod runtime. Loading this module starts nothing.
import { loadConfig } from '../src/config';
import { formatError } from '../src/lib/errors';
import { createLogger } from '../src/lib/logger';
import { isPrivateAddress } from '../src/media/address-guard';
import { createWebhookGuard, runWorker } from '../src/runpod';
import { createApp } from './app';

async function main(): Promise<number> {
  const config = loadConfig(process.env);
  const logger = createLogger({ level: config.logLevel });
  logger.info('steadydancer-worker starting', { mode: config.mode, node: process.version });
  const app = createApp(config, logger);
  return runWorker({
    config: config.runpod,
    handler: app.handler,
    logger,
    argv: process.argv.slice(2),
    filesDir: config.paths.outputDir,
    onShutdown: () => app.close(),
    // The local API refuses webhooks into this network, as input URLs are refused.
    checkWebhook: createWebhookGuard({ allowPrivate: config.media.allowPrivateUrls, isPrivateAddress }),
  });
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
