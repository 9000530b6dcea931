// The heartbeat runs in a worker_thread so a handler that blocks the main event loop cannot starve
// it (rp-py uses a separate process). The main thread tells it the running job ids by message.
import { Worker } from 'node:worker_threads';
import type { Logger } from '../lib/logger';
import { RUNPOD_PROTOCOL_VERSION } from './envelope';

export interface HeartbeatOptions {
  /** Ping URL with `$RUNPOD_POD_ID` already filled. */
  url: string;
  apiKey: string;
  intervalMs: number;
  userAgent: string;
  logger: Logger;
}

/** Messages from main to the thread. */
type ToThread = { type: 'jobs'; ids: string[] } | { type: 'stop' };
/** Messages from the thread to main (for logging only). */
type FromThread = { type: 'failed'; status?: number; message: string } | { type: 'stopped' };

// Self-contained JS (the bundle has no separate file for the thread): ping now, then every interval;
// `job_id` omitted when idle; timeout 2 × interval; up to 3 retries on 429/500/502/503/504 and on
// network errors other than the timeout (rp-py retries only the statuses).
// Values are encoded as rp-py's `requests` does (`quote_plus`): `job_id=a%2Cb`, space as `+`.
// node:http(s), not fetch: fetch would load Node's undici into the thread, ~8 MiB more resident memory.
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { url, apiKey, intervalMs, userAgent, version } = workerData;
const client = url.startsWith('https:') ? require('node:https') : require('node:http');
const agent = new client.Agent({ keepAlive: true });
let ids = [];
let timer;
let stopped = false;
const RETRY = new Set([429, 500, 502, 503, 504]);
function quotePlus(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase()).replace(/%20/g, '+');
}
function pingUrl() {
  const params = [];
  if (ids.length > 0) params.push('job_id=' + quotePlus(ids.join(',')));
  params.push('runpod_version=' + quotePlus(version));
  return url + (url.includes('?') ? '&' : '?') + params.join('&');
}
function get(target) {
  return new Promise((resolve, reject) => {
    const headers = { Authorization: apiKey, 'User-Agent': userAgent };
    const req = client.get(target, { agent, headers, signal: AbortSignal.timeout(intervalMs * 2) }, (res) => {
      res.resume();
      res.on('error', reject);
      res.on('close', () => (res.complete ? resolve(res.statusCode) : reject(new Error('ping answer cut off'))));
    });
    req.on('error', reject);
  });
}
async function ping() {
  for (let attempt = 0; attempt < 4 && !stopped; attempt++) {
    try {
      const status = await get(pingUrl());
      if (status >= 200 && status < 300) return;
      if (!RETRY.has(status) || attempt === 3) {
        parentPort.postMessage({ type: 'failed', status, message: 'ping answered HTTP ' + status });
        return;
      }
    } catch (err) {
      // Network errors are retried too (a kept-alive socket the server has just closed fails once);
      // a ping that timed out is not: the next one is due.
      if (attempt === 3 || stopped || (err && err.name === 'AbortError')) {
        parentPort.postMessage({ type: 'failed', message: String(err && err.message || err) });
        return;
      }
    }
  }
}
async function loop() {
  if (stopped) return;
  const started = Date.now();
  await ping();
  if (!stopped) timer = setTimeout(loop, Math.max(0, intervalMs - (Date.now() - started)));
}
parentPort.on('message', (msg) => {
  if (msg.type === 'jobs') ids = msg.ids;
  if (msg.type === 'stop') {
    // A ping on its way is let finish (the first one is always on its way by now, as rp-py pings at
    // once); idle kept-alive sockets do not hold the thread.
    stopped = true;
    clearTimeout(timer);
    parentPort.postMessage({ type: 'stopped' });
    parentPort.close();
  }
});
loop();
`;

/** Floor on the ping interval (rp-py turns < 1000 ms into a 0 s tight loop). */
export const MIN_PING_INTERVAL_MS = 1000;

export class Heartbeat {
  private readonly worker: Worker;
  private stopping: Promise<void> | undefined;

  constructor(opts: HeartbeatOptions) {
    this.worker = new Worker(THREAD_SOURCE, {
      eval: true,
      workerData: {
        url: opts.url,
        apiKey: opts.apiKey,
        intervalMs: Math.max(MIN_PING_INTERVAL_MS, opts.intervalMs),
        userAgent: opts.userAgent,
        version: RUNPOD_PROTOCOL_VERSION,
      },
    });
    this.worker.on('message', (msg: FromThread) => {
      if (msg.type === 'failed') opts.logger.warn('heartbeat ping failed', { status: msg.status, reason: msg.message });
    });
    this.worker.on('error', (err) => opts.logger.error('heartbeat thread crashed', { error: err }));
    // The thread must never be what keeps the process alive.
    this.worker.unref();
  }

  /** The ids sent with every following ping. */
  setJobs(ids: readonly string[]): void {
    if (this.stopping) return;
    this.worker.postMessage({ type: 'jobs', ids: [...ids] } satisfies ToThread);
  }

  /** Stops pinging; idempotent; bounded (terminates the thread if it does not answer in 1 s). */
  stop(): Promise<void> {
    this.stopping ??= new Promise<void>((resolve) => {
      const timer = setTimeout(() => void this.worker.terminate().finally(resolve), 1000);
      this.worker.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      this.worker.postMessage({ type: 'stop' } satisfies ToThread);
    });
    return this.stopping;
  }
}
