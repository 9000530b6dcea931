// A loopback fake of RunPod's internal job API (job-take, job-take-batch, job-done, job-stream,
// job-stop, ping), as RunPod serves it (docs/protocol.md): takes are long polls held until a job is queued,
// 204 when the hold ends; scripted answers (400, 429, 500, bodies) are served first, in order.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type RouteKind = 'take' | 'take-batch' | 'done' | 'stream' | 'stop' | 'ping';

export interface RecordedRequest {
  kind: RouteKind;
  method: string;
  path: string;
  /** The request target exactly as sent (path and raw query string, nothing re-encoded). */
  url: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  /** Raw body text (done/stream posts carry JSON despite their form content type). */
  text: string;
  /** Parsed body when it is JSON. */
  body: unknown;
  workerId: string;
  jobId?: string;
  at: number;
}

export interface ScriptedAnswer {
  status: number;
  /** Sent as JSON with `application/json` unless `contentType` says otherwise. */
  json?: unknown;
  text?: string;
  contentType?: string;
}

export interface FakeJobApiOptions {
  /** How long a take or stop poll is held when nothing is queued (RunPod holds for long). */
  holdMs?: number;
  endpointId?: string;
}

interface Held {
  res: ServerResponse;
  timer: NodeJS.Timeout;
  batchSize: number;
}

export interface FakeJobApi {
  url: string;
  /** Templates as RunPod sets them in the environment. */
  templates: { jobTakeUrl: string; jobDoneUrl: string; jobStreamUrl: string; pingUrl: string };
  requests: RecordedRequest[];
  /** Queues jobs for the next take (released to a held poll at once). */
  addJobs(...jobs: unknown[]): void;
  /** Next answers for a route kind, in order, before normal behaviour. */
  script(kind: RouteKind, ...answers: ScriptedAnswer[]): void;
  /** Next stop poll answers `{"jobsToStop": ids}` (a held stop poll is released at once). */
  stopJobs(ids: unknown[]): void;
  /** Resolves the first (or `nth`) recorded request matching, waiting for it up to `timeoutMs`. */
  waitFor(match: (r: RecordedRequest) => boolean, timeoutMs?: number, nth?: number): Promise<RecordedRequest>;
  of(kind: RouteKind): RecordedRequest[];
  close(): Promise<void>;
}

export async function startFakeJobApi(options: FakeJobApiOptions = {}): Promise<FakeJobApi> {
  const holdMs = options.holdMs ?? 500;
  const endpointId = options.endpointId ?? 'ep1';
  const requests: RecordedRequest[] = [];
  const queued: unknown[] = [];
  const scripts = new Map<RouteKind, ScriptedAnswer[]>();
  const stopQueue: unknown[][] = [];
  const heldTakes: Held[] = [];
  const heldStops: Held[] = [];
  const listeners = new Set<() => void>();

  const answer = (res: ServerResponse, a: ScriptedAnswer): void => {
    if (res.writableEnded || res.destroyed) return;
    if (a.json !== undefined) {
      res.writeHead(a.status, { 'Content-Type': a.contentType ?? 'application/json' });
      res.end(JSON.stringify(a.json));
    } else {
      res.writeHead(a.status, a.contentType ? { 'Content-Type': a.contentType } : {});
      res.end(a.text ?? '');
    }
  };

  const releaseTakes = (): void => {
    while (queued.length > 0 && heldTakes.length > 0) {
      const held = heldTakes.shift() as Held;
      clearTimeout(held.timer);
      if (held.res.destroyed) continue;
      answer(held.res, takeAnswer(held.batchSize));
    }
  };

  const takeAnswer = (batchSize: number): ScriptedAnswer => {
    if (batchSize > 0) return { status: 200, json: queued.splice(0, batchSize) };
    return { status: 200, json: queued.shift() };
  };

  const releaseStops = (): void => {
    while (stopQueue.length > 0 && heldStops.length > 0) {
      const held = heldStops.shift() as Held;
      clearTimeout(held.timer);
      answer(held.res, { status: 200, json: { jobsToStop: stopQueue.shift() } });
    }
  };

  const hold = (list: Held[], res: ServerResponse, batchSize: number): void => {
    const held: Held = {
      res,
      batchSize,
      timer: setTimeout(() => {
        list.splice(list.indexOf(held), 1);
        answer(res, { status: 204 });
      }, holdMs),
    };
    res.on('close', () => {
      clearTimeout(held.timer);
      const i = list.indexOf(held);
      if (i >= 0) list.splice(i, 1);
    });
    list.push(held);
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const m = url.pathname.match(/^\/v2\/([^/]+)\/(job-take|job-take-batch|job-done|job-stream|job-stop|ping)\/([^/]+)(?:\/([^/]+))?$/);
      if (!m) {
        res.writeHead(404).end();
        return;
      }
      const kind = (
        {
          'job-take': 'take',
          'job-take-batch': 'take-batch',
          'job-done': 'done',
          'job-stream': 'stream',
          'job-stop': 'stop',
          ping: 'ping',
        } as const
      )[m[2] as 'job-take'] as RouteKind;
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        body = undefined;
      }
      const rec: RecordedRequest = {
        kind,
        method: req.method ?? 'GET',
        path: url.pathname,
        url: req.url ?? '/',
        query: url.searchParams,
        headers: req.headers,
        text,
        body,
        workerId: decodeURIComponent(m[3] ?? ''),
        ...(m[4] ? { jobId: decodeURIComponent(m[4]) } : {}),
        at: performance.now(),
      };
      requests.push(rec);
      for (const l of [...listeners]) l();

      const scripted = scripts.get(kind)?.shift();
      if (scripted) return answer(res, scripted);
      switch (kind) {
        case 'take':
        case 'take-batch': {
          const batchSize = kind === 'take-batch' ? Number(url.searchParams.get('batch_size') ?? '1') : 0;
          if (queued.length > 0) return answer(res, takeAnswer(batchSize));
          return hold(heldTakes, res, batchSize);
        }
        case 'stop':
          if (stopQueue.length > 0) return answer(res, { status: 200, json: { jobsToStop: stopQueue.shift() } });
          return hold(heldStops, res, 0);
        default:
          return answer(res, { status: 200, text: '' });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const base = `${url}/v2/${endpointId}`;

  const api: FakeJobApi = {
    url,
    templates: {
      jobTakeUrl: `${base}/job-take/$ID?gpu=NVIDIA+H100`,
      jobDoneUrl: `${base}/job-done/$RUNPOD_POD_ID/$ID?gpu=NVIDIA+H100`,
      jobStreamUrl: `${base}/job-stream/$RUNPOD_POD_ID/$ID?gpu=NVIDIA+H100`,
      pingUrl: `${base}/ping/$RUNPOD_POD_ID?gpu=NVIDIA+H100`,
    },
    requests,
    addJobs: (...jobs) => {
      queued.push(...jobs);
      releaseTakes();
    },
    script: (kind, ...answers) => {
      scripts.set(kind, [...(scripts.get(kind) ?? []), ...answers]);
    },
    stopJobs: (ids) => {
      stopQueue.push(ids);
      releaseStops();
    },
    of: (kind) => requests.filter((r) => r.kind === kind),
    waitFor: (match, timeoutMs = 15_000, nth = 1) =>
      new Promise((resolve, reject) => {
        const check = (): boolean => {
          const found = requests.filter(match)[nth - 1];
          if (!found) return false;
          listeners.delete(check);
          clearTimeout(timer);
          resolve(found);
          return true;
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(
            new Error(
              `fake job API: no matching request #${nth} within ${timeoutMs} ms (saw ${requests.map((r) => `${r.method} ${r.path}?${r.query}`).join(', ')})`,
            ),
          );
        }, timeoutMs);
        if (!check()) listeners.add(check);
      }),
    close: async () => {
      for (const h of [...heldTakes, ...heldStops]) clearTimeout(h.timer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return api;
}
