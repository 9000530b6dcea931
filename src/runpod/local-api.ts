// `--rp_serve_api`: a RunPod-compatible endpoint API on node:http, a superset of rp-py's dev server
// (GET and POST, optional `/<endpointId>` prefix so `runpod-sdk` works, /run runs in the background).
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { closeInOrder } from '../lib/close-steps';
import { isWorkerError } from '../lib/errors';
import type { Logger } from '../lib/logger';
import { LocalJobs, type LocalJobsOptions, type SubmitBody } from './local-jobs';
import type { WebhookGuard } from './webhook-guard';

/** What the handler's own dependencies (e.g. an engine it starts) say for /health: `state` sets the
 * worker's count (initializing / ready / unhealthy); the other fields are shown as they are. */
export interface HandlerHealth {
  state: 'initializing' | 'ready' | 'unhealthy';
  [field: string]: unknown;
}

export interface LocalApiOptions extends Omit<LocalJobsOptions, 'filesBaseUrl'> {
  /** Merged into /health; without it the worker counts as ready whenever a job slot is free. */
  health?: () => HandlerHealth | Promise<HandlerHealth>;
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Folder served under `/files/` (outputs of local jobs). */
  filesDir?: string;
  logger: Logger;
}

export interface LocalApi {
  /** Base URL, e.g. `http://localhost:8000`. */
  url: string;
  filesBaseUrl: string | undefined;
  jobs: LocalJobs;
  /**
   * Stops accepting connections, closes the jobs (LocalJobs.close: `graceMs` for running jobs, then
   * for webhooks), then cuts the connections still open. Idempotent: later calls share the first.
   */
  close(graceMs: number): Promise<void>;
}

/** Payload caps of the real endpoint API (a larger body answers 413). */
const MAX_RUN_BYTES = 10 * 1024 * 1024;
const MAX_RUNSYNC_BYTES = 20 * 1024 * 1024;
const DEFAULT_WAIT_MS = 90_000;
const MAX_WAIT_MS = 300_000;
/** /stream holds a request this long for a new chunk, so clients that poll without delay don't spin. */
const STREAM_HOLD_MS = 1_000;

type Op = 'run' | 'runsync' | 'status' | 'status-sync' | 'stream' | 'cancel' | 'retry' | 'health' | 'purge-queue';
const OPS: Record<Op, { methods: readonly string[]; needsId: boolean }> = {
  run: { methods: ['POST'], needsId: false },
  runsync: { methods: ['POST'], needsId: false },
  status: { methods: ['GET', 'POST'], needsId: true },
  'status-sync': { methods: ['GET', 'POST'], needsId: true },
  stream: { methods: ['GET', 'POST'], needsId: true },
  cancel: { methods: ['POST'], needsId: true },
  retry: { methods: ['POST'], needsId: true },
  health: { methods: ['GET', 'POST'], needsId: false },
  'purge-queue': { methods: ['POST'], needsId: false },
};

const CONTENT_TYPES: Record<string, string> = {
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

async function readBody(req: IncomingMessage, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new HttpError(413, `request body over ${maxBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseSubmit(text: string): SubmitBody {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'the request body is not valid JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new HttpError(400, 'the request body must be a JSON object with an `input` field');
  const input = (body as { input?: unknown }).input;
  if (input === undefined || input === null) throw new HttpError(400, 'the request body has no `input` field');
  return body as SubmitBody;
}

/** A `webhook` must be an http(s) URL the guard allows (no private addresses by default); 400 otherwise. */
async function checkWebhookField(body: SubmitBody, guard: WebhookGuard | undefined): Promise<void> {
  const hook = body.webhook;
  if (hook === undefined || hook === null || hook === '') return;
  if (typeof hook !== 'string') throw new HttpError(400, '`webhook` must be a URL string');
  let url: URL;
  try {
    url = new URL(hook);
  } catch {
    throw new HttpError(400, '`webhook` is not a valid URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new HttpError(400, `\`webhook\` must be an http(s) URL, not ${url.protocol}`);
  try {
    await guard?.(url);
  } catch (err) {
    if (isWorkerError(err)) throw new HttpError(400, `\`webhook\`: ${err.message}`);
    throw err;
  }
}

/** Reads, parses and checks a /run or /runsync body. */
async function readSubmit(req: IncomingMessage, maxBytes: number, guard: WebhookGuard | undefined): Promise<SubmitBody> {
  const body = parseSubmit(await readBody(req, maxBytes));
  await checkWebhookField(body, guard);
  return body;
}

function waitParam(url: URL): number {
  const raw = url.searchParams.get('wait');
  const n = raw === null ? DEFAULT_WAIT_MS : Number(raw);
  if (!Number.isFinite(n)) throw new HttpError(400, '`wait` must be a number of milliseconds');
  return Math.min(MAX_WAIT_MS, Math.max(1000, n));
}

/** decodeURIComponent, with a malformed `%` escape answered 400 instead of a URIError (500). */
function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new HttpError(400, 'the path has a malformed % escape; write a literal % as %25');
  }
}

/** `/op[/id]` or `/<endpointId>/op[/id]`. */
function route(pathname: string): { op: Op; id: string | undefined } | undefined {
  const segs = pathname.split('/').filter(Boolean).map(decodePathPart);
  const rest = segs[0] !== undefined && segs[0] in OPS ? segs : segs.slice(1);
  const op = rest[0] as Op | undefined;
  if (op === undefined || !(op in OPS) || rest.length > 2) return undefined;
  const id = rest[1];
  if (OPS[op].needsId !== (id !== undefined)) return undefined;
  return { op, id };
}

export async function startLocalApi(opts: LocalApiOptions): Promise<LocalApi> {
  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const publicHost = ['0.0.0.0', '::', ''].includes(opts.host) ? 'localhost' : opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const url = `http://${publicHost}:${port}`;
  const filesDir = opts.filesDir ? path.resolve(opts.filesDir) : undefined;
  const filesBaseUrl = filesDir ? `${url}/files` : undefined;
  const jobs = new LocalJobs({ ...opts, ...(filesBaseUrl ? { filesBaseUrl } : {}) });

  const health = async (): Promise<Record<string, unknown>> => {
    const own = jobs.health();
    if (!opts.health) return own;
    const { state, ...fields } = await opts.health();
    const workers = own.workers as Record<string, number>;
    // a worker whose dependencies are not ready takes no job, free slot or not
    const counted = state === 'ready' ? workers : { ...workers, idle: 0, ready: 0, [state]: 1 };
    return { ...own, ...fields, workers: counted };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const reqUrl = new URL(req.url ?? '/', url);
    const method = req.method ?? 'GET';
    if (reqUrl.pathname.startsWith('/files/') && filesDir) return serveFile(res, filesDir, reqUrl.pathname.slice('/files/'.length), method);
    if (reqUrl.pathname === '/' && method === 'GET')
      return send(res, 200, { routes: Object.keys(OPS).map((op) => `/${op}`), endpointPrefix: '/<endpointId>/<route> also works' });
    const r = route(reqUrl.pathname);
    if (!r) throw new HttpError(404, `no route ${reqUrl.pathname}`);
    const allowed = OPS[r.op].methods;
    if (!allowed.includes(method))
      return send(res, 405, { error: `${method} not allowed; use ${allowed.join(' or ')}` }, { Allow: allowed.join(', ') });
    const id = r.id ?? '';
    /** Unknown and expired ids answer 404, as on RunPod. */
    const found = <T>(value: T | undefined): T => {
      if (value === undefined) throw new HttpError(404, `job ${id} not found (unknown, or its result has expired)`);
      return value;
    };
    switch (r.op) {
      case 'run':
        return send(res, 200, jobs.submit(await readSubmit(req, MAX_RUN_BYTES, opts.checkWebhook)));
      case 'runsync': {
        const wait = waitParam(reqUrl);
        const submitted = jobs.submit(await readSubmit(req, MAX_RUNSYNC_BYTES, opts.checkWebhook));
        return send(res, 200, found(await jobs.waitFinal(submitted.id, wait)));
      }
      case 'status':
        return send(res, 200, found(jobs.status(id)));
      case 'status-sync': {
        const wait = waitParam(reqUrl);
        return send(res, 200, found(await jobs.waitFinal(id, wait)));
      }
      case 'stream':
        return send(res, 200, found(await jobs.streamSince(id, STREAM_HOLD_MS)));
      case 'cancel':
        return send(res, 200, found(jobs.cancel(id)));
      case 'retry': {
        const retried = found(jobs.retry(id));
        if (retried === 'not-retryable') throw new HttpError(400, `job ${id} can be retried only when FAILED or TIMED_OUT`);
        return send(res, 200, retried);
      }
      case 'health':
        return send(res, 200, await health());
      case 'purge-queue':
        return send(res, 200, { removed: jobs.purge(), status: 'completed' });
    }
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof HttpError) return send(res, err.status, { error: err.message });
      opts.logger.error('local API request failed', { error: err, path: req.url });
      if (!res.headersSent) send(res, 500, { error: 'internal error; see the worker log' });
      else res.destroy();
    });
  });

  let closing: Promise<void> | undefined;
  const close = async (graceMs: number): Promise<void> => {
    let serverClosed: Promise<void> = Promise.resolve();
    await closeInOrder(opts.logger, [
      [
        'stop accepting connections',
        () => {
          serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
          server.closeIdleConnections();
        },
      ],
      ['close the jobs', () => jobs.close(graceMs)],
      [
        'close the connections still open',
        () => {
          server.closeAllConnections();
          return serverClosed;
        },
      ],
    ]);
  };

  opts.logger.info('local API listening', { url, ...(filesBaseUrl ? { filesBaseUrl } : {}) });
  return { url, filesBaseUrl, jobs, close: (graceMs) => (closing ??= close(graceMs)) };
}

async function serveFile(res: ServerResponse, root: string, relative: string, method: string): Promise<void> {
  if (method !== 'GET' && method !== 'HEAD') return send(res, 405, { error: 'use GET' }, { Allow: 'GET, HEAD' });
  const file = path.resolve(root, decodePathPart(relative));
  // Refuse anything that resolves outside the served folder (`..`, absolute paths).
  if (!file.startsWith(root + path.sep)) throw new HttpError(404, 'file not found');
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) throw new HttpError(404, 'file not found');
  res.writeHead(200, {
    'Content-Type': CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
    'Content-Length': info.size,
  });
  if (method === 'HEAD') return void res.end();
  await new Promise<void>((resolve, reject) => {
    createReadStream(file).on('error', reject).pipe(res).on('finish', resolve).on('error', reject);
  });
}
