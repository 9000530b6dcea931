// One "shut down now" signal for runWorker: SIGTERM or SIGINT on the process, or the caller's own
// signal (tests, embedding), whichever comes first.
import type { Logger } from '../lib/logger';

export interface ShutdownSignal {
  readonly signal: AbortSignal;
  /** Stops listening to the process and to the caller's signal. */
  dispose(): void;
}

export interface ShutdownSignalOptions {
  /** Aborting it shuts down too. */
  linked?: AbortSignal;
  /** Listen to SIGTERM and SIGINT on `process`. */
  processSignals: boolean;
  logger: Logger;
}

export function listenForShutdown({ linked, processSignals, logger }: ShutdownSignalOptions): ShutdownSignal {
  const shutdown = new AbortController();
  const onProcessSignal = (name: NodeJS.Signals): void => {
    logger.info(`received ${name}`);
    shutdown.abort();
  };
  const onLinked = (): void => shutdown.abort();
  if (linked?.aborted) shutdown.abort();
  linked?.addEventListener('abort', onLinked, { once: true });
  if (processSignals) {
    process.on('SIGTERM', onProcessSignal);
    process.on('SIGINT', onProcessSignal);
  }
  return {
    signal: shutdown.signal,
    dispose: () => {
      process.off('SIGTERM', onProcessSignal);
      process.off('SIGINT', onProcessSignal);
      linked?.removeEventListener('abort', onLinked);
    },
  };
}
