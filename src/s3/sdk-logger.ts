// The AWS SDK logs through the client's `logger` (and falls back to console.warn, printing
// non-JSON lines such as "An error was encountered in a non-retryable streaming request."):
// this adapter sends its lines into our JSON logger instead.
import { format } from 'node:util';
import type { Logger } from '../lib/logger';

/** The SDK's logger interface (@smithy/types Logger). */
export interface SdkLogger {
  trace?: (...content: unknown[]) => void;
  debug: (...content: unknown[]) => void;
  info: (...content: unknown[]) => void;
  warn: (...content: unknown[]) => void;
  error: (...content: unknown[]) => void;
}

interface CommandRecord {
  commandName?: string;
  metadata?: { httpStatusCode?: number };
  error?: { name?: string };
}

export function sdkLogger(logger: Logger): SdkLogger {
  const route =
    (level: 'debug' | 'info' | 'warn' | 'error') =>
    (...content: unknown[]): void => {
      const [first] = content;
      if (first !== null && typeof first === 'object' && 'commandName' in first) {
        // The SDK's record of every call (input, output or error). Our own lines already say what
        // failed and why; the record would add request inputs to the log, so only its gist stays.
        const rec = first as CommandRecord;
        logger.debug('aws-sdk call', {
          component: 'aws-sdk',
          command: rec.commandName,
          status: rec.metadata?.httpStatusCode,
          error: rec.error?.name,
        });
        return;
      }
      logger[level](`aws-sdk: ${format(...content)}`, { component: 'aws-sdk' });
    };
  return { debug: route('debug'), info: route('debug'), warn: route('warn'), error: route('error') };
}
