// Entry point of the worker image. Wires config, the job and the RunPod runtime.
import { loadConfig } from '../src/config';
import { createLogger } from '../src/lib/logger';

const config = loadConfig();
const logger = createLogger({ level: config.logLevel });
logger.info('steadydancer-worker starting', { mode: config.mode });
