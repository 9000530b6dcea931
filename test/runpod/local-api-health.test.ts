// The local API's /health hook: what the handler's dependencies say (e.g. ComfyUI still booting) is merged
// into RunPod's /health shape, and a worker whose dependencies are not ready is not counted as ready.
import { describe, expect, it } from '@jest/globals';
import { runWorker, type HandlerHealth, type RunWorkerOptions } from '../../src/runpod';
import { captureLogger, FAST, localConfig } from './helpers';

/** runWorker in local API mode on a free port, as `--rp_serve_api` starts it. */
async function startApiWorker(extra: Pick<RunWorkerOptions, 'health'>): Promise<{ url: string; stop(): Promise<number> }> {
  const shutdown = new AbortController();
  let listening!: (url: string) => void;
  const url = new Promise<string>((resolve) => (listening = resolve));
  const exit = runWorker({
    config: localConfig({ podHostname: 'h1' }),
    handler: async () => ({ ok: true }),
    logger: captureLogger().logger,
    argv: ['--rp_serve_api', '--rp_api_host', '127.0.0.1', '--rp_api_port', '0'],
    handleSignals: false,
    shutdownSignal: shutdown.signal,
    timing: FAST,
    onListening: listening,
    ...extra,
  });
  return {
    url: await Promise.race([url, exit.then((code) => Promise.reject(new Error(`runWorker exited with ${code}`)))]),
    stop: () => {
      shutdown.abort();
      return exit;
    },
  };
}

describe('local API /health with a handler health hook', () => {
  it('counts the worker initializing or unhealthy while its dependencies are, shows their fields, and ready once they are', async () => {
    let health: HandlerHealth = { state: 'initializing', engine: { state: 'starting', lastError: 'ECONNREFUSED' } };
    const w = await startApiWorker({ health: () => health });
    try {
      const get = async () => (await fetch(`${w.url}/health`)).json() as Promise<Record<string, unknown>>;
      expect(await get()).toEqual({
        jobs: { completed: 0, failed: 0, inProgress: 0, inQueue: 0, retried: 0 },
        workers: { idle: 0, initializing: 1, ready: 0, running: 0, throttled: 0, unhealthy: 0 },
        engine: { state: 'starting', lastError: 'ECONNREFUSED' },
      });
      health = { state: 'unhealthy', engine: { state: 'unhealthy', lastError: 'not ready within 600 s' } };
      expect(await get()).toMatchObject({ workers: { idle: 0, initializing: 0, ready: 0, unhealthy: 1 }, engine: { state: 'unhealthy' } });
      health = { state: 'ready', engine: { state: 'ready' } };
      expect(await get()).toMatchObject({ workers: { idle: 1, initializing: 0, ready: 1, unhealthy: 0 }, engine: { state: 'ready' } });
    } finally {
      await w.stop();
    }
  });

  it('without a hook counts the worker ready whenever a job slot is free', async () => {
    const w = await startApiWorker({});
    try {
      const body = (await (await fetch(`${w.url}/health`)).json()) as Record<string, unknown>;
      expect(body).toEqual({
        jobs: { completed: 0, failed: 0, inProgress: 0, inQueue: 0, retried: 0 },
        workers: { idle: 1, initializing: 0, ready: 1, running: 0, throttled: 0, unhealthy: 0 },
      });
    } finally {
      await w.stop();
    }
  });
});
