import { describe, expect, it } from '@jest/globals';
import { listenForShutdown } from '../../src/runpod/shutdown-signal';
import { captureLogger } from './helpers';

describe('listenForShutdown', () => {
  it("aborts with the caller's signal, also one aborted before, and stops listening on dispose", () => {
    const { logger } = captureLogger();
    const early = new AbortController();
    early.abort();
    expect(listenForShutdown({ linked: early.signal, processSignals: false, logger }).signal.aborted).toBe(true);

    const linked = new AbortController();
    const later = listenForShutdown({ linked: linked.signal, processSignals: false, logger });
    expect(later.signal.aborted).toBe(false);
    linked.abort();
    expect(later.signal.aborted).toBe(true);

    const disposed = new AbortController();
    const gone = listenForShutdown({ linked: disposed.signal, processSignals: false, logger });
    gone.dispose();
    disposed.abort();
    expect(gone.signal.aborted).toBe(false);
  });

  it('listens to SIGTERM and SIGINT only when asked, and removes its listeners on dispose', () => {
    const { logger, lines } = captureLogger();
    const before = { term: process.listenerCount('SIGTERM'), int: process.listenerCount('SIGINT') };
    listenForShutdown({ processSignals: false, logger }).dispose();
    expect(process.listenerCount('SIGTERM')).toBe(before.term);
    const shutdown = listenForShutdown({ processSignals: true, logger });
    expect({ term: process.listenerCount('SIGTERM'), int: process.listenerCount('SIGINT') }).toEqual({
      term: before.term + 1,
      int: before.int + 1,
    });
    // Call our own listener (process.emit would run every listener of the test runner's too).
    const ours = process.listeners('SIGTERM').at(-1) as (name: NodeJS.Signals) => void;
    ours('SIGTERM');
    expect(shutdown.signal.aborted).toBe(true);
    expect(lines.map((l) => l.message)).toContain('received SIGTERM');
    shutdown.dispose();
    expect({ term: process.listenerCount('SIGTERM'), int: process.listenerCount('SIGINT') }).toEqual(before);
  });
});
