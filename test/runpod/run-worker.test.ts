// runWorker's teardown: whatever way a mode ends, it is closed, and onShutdown still runs.
import { describe, expect, it } from '@jest/globals';
import { loadConfig } from '../../src/config';
import { runWorker } from '../../src/runpod';
import { captureLogger, FAST } from './helpers';

describe('runWorker teardown', () => {
  it('closes the local API when a callback throws after it listens, still runs onShutdown, and exits 1', async () => {
    const { logger, lines } = captureLogger();
    let url: string | undefined;
    const shutDown: string[] = [];
    const code = await runWorker({
      config: loadConfig({}).runpod,
      handler: async () => 'ok',
      logger,
      argv: ['--rp_serve_api', '--rp_api_host', '127.0.0.1', '--rp_api_port', '0'],
      handleSignals: false,
      timing: FAST,
      onListening: (listening) => {
        url = listening;
        throw new Error('host callback broke');
      },
      onShutdown: async () => void shutDown.push('down'),
    });
    expect(code).toBe(1);
    expect(lines.find((l) => l.message === 'the worker stopped on an error')).toMatchObject({ error: { message: 'host callback broke' } });
    expect(url).toBeDefined();
    await expect(fetch(`${url as string}/health`)).rejects.toThrow(); // nothing listens there any more
    expect(shutDown).toEqual(['down']);
  });

  it('one-shot mode: a shutdown that came before the job started runs no job and exits 1', async () => {
    const { logger, lines } = captureLogger();
    const stopped = new AbortController();
    stopped.abort();
    const ran: unknown[] = [];
    const printed: string[] = [];
    const code = await runWorker({
      config: loadConfig({}).runpod,
      handler: async (job) => void ran.push(job.input),
      logger,
      argv: ['--test_input', '{"input": {"x": 1}}'],
      handleSignals: false,
      shutdownSignal: stopped.signal,
      timing: FAST,
      print: (t) => void printed.push(t),
    });
    expect({ code, ran, printed }).toEqual({ code: 1, ran: [], printed: [] });
    expect(lines.map((l) => l.message)).toContain('interrupted (SIGTERM/SIGINT) before the job started; exiting');
  });
});
