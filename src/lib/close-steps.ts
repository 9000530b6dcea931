// Ordered clean-up in which one failing step never skips the ones after it (BullMQ's Worker.close():
// each release in its own try/catch). A step's failure is logged under its name and the next runs.
import type { Logger } from './logger';

/** `[what it does, for the log line; the step]`. */
export type CloseStep = readonly [name: string, run: () => unknown];

/** Runs the steps in order, each awaited; resolves (never rejects) with the names of those that failed. */
export async function closeInOrder(logger: Logger, steps: readonly CloseStep[]): Promise<string[]> {
  const failed: string[] = [];
  for (const [name, run] of steps) {
    try {
      await run();
    } catch (err) {
      failed.push(name);
      logger.error('shutdown step failed; going on with the next', { step: name, error: err });
    }
  }
  return failed;
}
