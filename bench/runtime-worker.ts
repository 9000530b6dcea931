// The worker measured by bench/runtime.ts: the real config loader and runtime, a no-op handler.
import { loadConfig } from '../src/config';
import { createLogger } from '../src/lib/logger';
import { runWorker } from '../src/runpod';

const config = loadConfig(process.env);
void runWorker({
  config: config.runpod,
  handler: async () => ({ ok: true }),
  logger: createLogger({ level: 'warn' }),
  argv: process.argv.slice(2),
}).then((code) => process.exit(code));
