import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import runpodSdk from 'runpod-sdk';
import { isWorkerError } from '../../src/lib/errors';
import { delay } from '../../src/lib/delay';
import { isPrivateAddress } from '../../src/media/address-guard';
import { createWebhookGuard, startLocalApi, DEFAULT_TIMING, type Handler, type LocalApi, type LocalApiOptions } from '../../src/runpod';
import { aborted, captureLogger, deferred, FAST } from './helpers';

let api: LocalApi | undefined;
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  await api?.close(100);
  api = undefined;
  for (const c of cleanups.splice(0)) await c();
});

async function start(handler: Handler, over: Partial<LocalApiOptions> = {}): Promise<LocalApi> {
  api = await startLocalApi({
    host: '127.0.0.1',
    port: 0,
    handler,
    logger: captureLogger().logger,
    concurrency: 1,
    jobTimeoutMs: 10_000,
    timing: { ...DEFAULT_TIMING, ...FAST },
    returnAggregateStream: false,
    hostname: 'h1',
    ...over,
  });
  return api;
}

async function call(method: string, url: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

// The SDK prints each status poll; keep the test output readable.
const quietConsole = (): void => {
  const original = console.log;
  console.log = () => {};
  cleanups.push(async () => void (console.log = original));
};

/** A loopback webhook receiver answering the given statuses in turn (then 200). */
async function startHookServer(
  answers: number[],
): Promise<{ url: string; received: (n: number) => Promise<{ body: unknown; status: number }[]>; count: () => number }> {
  const seen: { body: unknown; status: number }[] = [];
  const waiters: (() => void)[] = [];
  const hook = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req
      .on('data', (c: Buffer) => chunks.push(c))
      .on('end', () => {
        const status = answers.shift() ?? 200;
        seen.push({ body: JSON.parse(Buffer.concat(chunks).toString()), status });
        res.writeHead(status).end();
        for (const w of waiters.splice(0)) w();
      });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => hook.close(() => r())));
  const received = async (n: number): Promise<{ body: unknown; status: number }[]> => {
    while (seen.length < n) await new Promise<void>((r) => waiters.push(r));
    return seen;
  };
  return { url: `http://127.0.0.1:${(hook.address() as AddressInfo).port}`, received, count: () => seen.length };
}

describe('local API with the runpod-sdk client', () => {
  it('runSync returns the completed output', async () => {
    quietConsole();
    const local = await start(async (job) => ({ doubled: (job.input as { n: number }).n * 2 }));
    const endpoint = runpodSdk('any-key', { baseUrl: local.url }).endpoint('my-endpoint');
    const result = await endpoint!.runSync({ input: { n: 21 } });
    expect(result).toMatchObject({ status: 'COMPLETED', output: { doubled: 42 }, completed: true, succeeded: true });
  });

  it('run queues (IN_QUEUE), statusSync/status follow the job to COMPLETED or FAILED', async () => {
    quietConsole();
    const gate = deferred();
    const local = await start(async (job) => {
      await gate.promise;
      return (job.input as { fail?: boolean }).fail ? { error: 'INVALID_INPUT: fail was set' } : 'done';
    });
    const endpoint = runpodSdk('k', { baseUrl: local.url }).endpoint('ep')!;
    const queued = await endpoint.run({ input: {} });
    expect(queued.status).toBe('IN_QUEUE');
    const second = await endpoint.run({ input: { fail: true } });
    expect((await endpoint.status(second.id)).status).toBe('IN_QUEUE'); // concurrency 1: waits
    expect((await endpoint.status(queued.id)).status).toBe('IN_PROGRESS');
    gate.resolve();
    const final = await endpoint.statusSync(queued.id, 5000);
    expect(final).toMatchObject({ status: 'COMPLETED', output: 'done' });
    expect(typeof (final as { executionTime?: unknown }).executionTime).toBe('number');
    const failed = await endpoint.statusSync(second.id, 5000);
    expect(failed).toMatchObject({ status: 'FAILED', error: 'INVALID_INPUT: fail was set', succeeded: false });
  });

  it('cancel aborts a running job with CANCELLED and purgeQueue drops queued ones; health counts', async () => {
    const reasons: unknown[] = [];
    const running = deferred();
    const local = await start(async (_job, ctx) => {
      running.resolve();
      reasons.push(await aborted(ctx.signal));
      throw reasons[0];
    });
    const endpoint = runpodSdk('k', { baseUrl: local.url }).endpoint('ep')!;
    const a = await endpoint.run({ input: {} });
    await endpoint.run({ input: {} });
    await endpoint.run({ input: {} });
    await running.promise;
    expect(await endpoint.health()).toMatchObject({ jobs: { inProgress: 1, inQueue: 2 } });
    expect(await endpoint.purgeQueue()).toEqual({ removed: 2, status: 'completed' });
    expect(await endpoint.cancel(a.id)).toMatchObject({ id: a.id, status: 'CANCELLED' });
    await delay(20);
    expect(isWorkerError(reasons[0], 'CANCELLED')).toBe(true);
    expect((await endpoint.status(a.id)).status).toBe('CANCELLED');
    expect(await endpoint.health()).toMatchObject({ jobs: { inProgress: 0, inQueue: 0 } });
  });

  it('stream yields every chunk of a stream handler', async () => {
    const local = await start(async function* () {
      for (let i = 1; i <= 3; i++) {
        await delay(20);
        yield { i };
      }
    });
    const endpoint = runpodSdk('k', { baseUrl: local.url }).endpoint('ep')!;
    const { id } = await endpoint.run({ input: {} });
    const seen: unknown[] = [];
    for await (const chunk of endpoint.stream(id, 5000)) seen.push(chunk);
    expect(seen).toEqual([{ output: { i: 1 } }, { output: { i: 2 } }, { output: { i: 3 } }]);
  });
});

describe('local API routes', () => {
  it('serves the routes with and without an endpoint prefix, GET and POST where clients use them', async () => {
    const local = await start(async () => 'ok');
    const sync = await call('POST', `${local.url}/runsync`, { input: {} });
    expect(sync).toMatchObject({ status: 200, json: { status: 'COMPLETED', output: 'ok' } });
    const id = sync.json.id as string;
    expect((await call('POST', `${local.url}/status/${id}`)).json.status).toBe('COMPLETED');
    expect((await call('GET', `${local.url}/ep/status/${id}`)).json.status).toBe('COMPLETED');
    expect((await call('GET', `${local.url}/status-sync/${id}?wait=1000`)).json.status).toBe('COMPLETED');
    expect((await call('POST', `${local.url}/ep/stream/${id}`)).json).toEqual({ status: 'COMPLETED', stream: [] });
    expect((await call('GET', `${local.url}/health`)).json).toMatchObject({ jobs: { completed: 1 } });
  });

  it('answers clear errors: unknown job 404, wrong method 405, missing input 400, oversized body 413', async () => {
    const local = await start(async () => 'ok');
    expect((await call('GET', `${local.url}/status/nope`)).status).toBe(404);
    const wrong = await fetch(`${local.url}/run`);
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('POST');
    await wrong.arrayBuffer();
    expect(await call('POST', `${local.url}/run`, { notInput: 1 })).toMatchObject({
      status: 400,
      json: { error: expect.stringContaining('`input`') },
    });
    const big = await fetch(`${local.url}/run`, { method: 'POST', body: JSON.stringify({ input: 'x'.repeat(10 * 1024 * 1024 + 10) }) });
    expect(big.status).toBe(413);
    await big.arrayBuffer();
  });

  it('answers 400 to a malformed % escape in a route or file path, without logging an error', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rp-files-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const { logger, lines } = captureLogger();
    const local = await start(async () => 'ok', { logger, filesDir: dir });
    for (const bad of ['/status/%E0%A4%A', '/ep%zz/status/x', '/files/a%2']) {
      const res = await call('GET', `${local.url}${bad}`);
      expect({ bad, ...res }).toMatchObject({ bad, status: 400, json: { error: expect.stringContaining('% escape') } });
    }
    expect(lines.filter((l) => l.level === 'ERROR')).toEqual([]);
    expect((await call('GET', `${local.url}/status/local-%41`)).status).toBe(404); // well-formed escapes still decode
  });

  it('forgets final jobs after the retention (their ids answer 404, as on RunPod) and keeps at most maxFinishedJobs', async () => {
    let offset = 0;
    const local = await start(async (job) => job.input, { now: () => Date.now() + offset, retentionMs: 60_000, maxFinishedJobs: 2 });
    const ids: string[] = [];
    for (const n of [1, 2]) ids.push((await call('POST', `${local.url}/runsync`, { input: n })).json.id as string);
    offset = 59_000;
    expect((await call('GET', `${local.url}/status/${ids[0]}`)).json).toMatchObject({ status: 'COMPLETED', output: 1 });
    ids.push((await call('POST', `${local.url}/runsync`, { input: 3 })).json.id as string);
    // Three final jobs, cap two: the oldest goes first.
    expect((await call('GET', `${local.url}/status/${ids[0]}`)).status).toBe(404);
    expect((await call('GET', `${local.url}/status/${ids[1]}`)).json).toMatchObject({ status: 'COMPLETED', output: 2 });
    offset = 60_000;
    expect((await call('GET', `${local.url}/status/${ids[1]}`)).status).toBe(404);
    expect((await call('GET', `${local.url}/status/${ids[2]}`)).json).toMatchObject({ status: 'COMPLETED', output: 3 });
    for (const op of ['status-sync', 'stream', 'cancel', 'retry']) {
      expect({ op, status: (await call('POST', `${local.url}/${op}/${ids[1]}`)).status }).toEqual({ op, status: 404 });
    }
    offset = 120_000;
    expect((await call('GET', `${local.url}/status/${ids[2]}`)).status).toBe(404);
    expect((await call('GET', `${local.url}/health`)).json).toMatchObject({ jobs: { completed: 3 } });
  });

  it('keeps queued and running jobs past the retention', async () => {
    let offset = 0;
    const gate = deferred();
    const local = await start(async () => gate.promise.then(() => 'late'), {
      now: () => Date.now() + offset,
      retentionMs: 1_000,
      maxFinishedJobs: 1,
    });
    const running = (await call('POST', `${local.url}/run`, { input: {} })).json.id as string;
    const queued = (await call('POST', `${local.url}/run`, { input: {} })).json.id as string;
    offset = 10_000;
    expect((await call('GET', `${local.url}/status/${running}`)).json.status).toBe('IN_PROGRESS');
    expect((await call('GET', `${local.url}/status/${queued}`)).json.status).toBe('IN_QUEUE');
    gate.resolve();
    expect((await call('GET', `${local.url}/status-sync/${queued}?wait=5000`)).json).toMatchObject({ status: 'COMPLETED', output: 'late' });
  });

  it('runsync returns the current status when the wait ends first', async () => {
    const gate = deferred();
    const local = await start(async () => gate.promise.then(() => 'late'));
    const res = await call('POST', `${local.url}/runsync?wait=1000`, { input: {} });
    expect(res.json.status).toBe('IN_PROGRESS');
    gate.resolve();
    expect((await call('GET', `${local.url}/status-sync/${res.json.id as string}`)).json).toMatchObject({
      status: 'COMPLETED',
      output: 'late',
    });
  });

  it('shows progress as output while running, TIMED_OUT after the execution timeout, and retries it', async () => {
    const progressed = deferred();
    let attempts = 0;
    const local = await start(async (_job, ctx) => {
      attempts++;
      ctx.progress({ percent: 50 });
      progressed.resolve();
      if (attempts > 1) return 'second time';
      throw await aborted(ctx.signal);
    });
    const { json } = await call('POST', `${local.url}/run`, { input: {}, policy: { executionTimeout: 1000 } });
    await progressed.promise;
    expect((await call('GET', `${local.url}/status/${json.id as string}`)).json).toMatchObject({
      status: 'IN_PROGRESS',
      output: { percent: 50 },
    });
    const timedOut = (await call('GET', `${local.url}/status-sync/${json.id as string}?wait=5000`)).json;
    expect(timedOut.status).toBe('TIMED_OUT');
    expect(JSON.parse(timedOut.error as string).error_message).toMatch(/^TIMEOUT: /);
    expect((await call('POST', `${local.url}/retry/${json.id as string}`)).json.status).toBe('IN_QUEUE');
    expect((await call('GET', `${local.url}/status-sync/${json.id as string}?wait=5000`)).json).toMatchObject({
      status: 'COMPLETED',
      output: 'second time',
    });
  });

  it('POSTs the status object to the webhook on completion, retrying a failed delivery', async () => {
    const hook = await startHookServer([500, 200]);
    const local = await start(async () => ({ url: 'https://x/y.mp4' }), {
      checkWebhook: createWebhookGuard({ allowPrivate: true, isPrivateAddress }),
    });
    const { json } = await call('POST', `${local.url}/runsync`, { input: {}, webhook: `${hook.url}/hook` });
    const received = await hook.received(2);
    expect(received.map((r) => r.status)).toEqual([500, 200]);
    expect(received[1]?.body).toMatchObject({ id: json.id, status: 'COMPLETED', output: { url: 'https://x/y.mp4' } });
  });

  it('serves files under filesBaseUrl and refuses paths outside the folder', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rp-files-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await mkdir(path.join(dir, 'job'));
    await writeFile(path.join(dir, 'job', 'out.mp4'), Buffer.from([0, 1, 2, 3]));
    let seenBase: string | undefined;
    const local = await start(
      async (_job, ctx) => {
        seenBase = ctx.filesBaseUrl;
        return `${ctx.filesBaseUrl}/job/out.mp4`;
      },
      { filesDir: dir },
    );
    const { json } = await call('POST', `${local.url}/runsync`, { input: {} });
    expect(seenBase).toBe(`${local.url}/files`);
    const file = await fetch(json.output as string);
    expect(file.headers.get('content-type')).toBe('video/mp4');
    expect([...new Uint8Array(await file.arrayBuffer())]).toEqual([0, 1, 2, 3]);
    const escape = await fetch(`${local.url}/files/..%2F..%2Fetc%2Fpasswd`);
    expect(escape.status).toBe(404);
    await escape.arrayBuffer();
  });
});

describe('webhook targets', () => {
  // Resolve, then check: names stand for what a resolver could answer.
  const dns: Record<string, string[]> = { 'hooks.example': ['93.184.216.34'], 'internal.example': ['93.184.216.34', '10.0.0.7'] };
  const guard = createWebhookGuard({
    allowPrivate: false,
    allowPrivateName: 'ALLOW_PRIVATE_URLS',
    isPrivateAddress,
    lookup: async (host) => {
      const found = dns[host];
      if (!found) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
      return found;
    },
  });

  it('refuses loopback, private and link-local webhooks at /run and /runsync with a 400 naming `webhook`, running nothing', async () => {
    const ran: string[] = [];
    const local = await start(async (job) => ran.push(job.id), { checkWebhook: guard });
    const refused: [string, RegExp][] = [
      [
        'http://127.0.0.1:9/hook',
        /^`webhook`: http:\/\/127\.0\.0\.1:9 resolves to 127\.0\.0\.1, a private, loopback or link-local address, which is refused; use a public URL, or set ALLOW_PRIVATE_URLS=true/,
      ],
      ['http://localhost.:9/hook', /^`webhook`: cannot resolve host localhost\. \(ENOTFOUND\)/],
      ['http://[::1]:9/', /resolves to ::1, a private/],
      ['http://169.254.169.254/latest/meta-data', /resolves to 169\.254\.169\.254, a private/],
      ['http://[::ffff:192.168.1.2]/', /resolves to ::ffff:c0a8:102, a private/],
      ['https://internal.example/hook', /resolves to 10\.0\.0\.7, a private/],
      ['ftp://hooks.example/x', /^`webhook` must be an http\(s\) URL, not ftp:$/],
      ['not a url', /^`webhook` is not a valid URL$/],
    ];
    for (const [webhook, message] of refused) {
      for (const route of ['run', 'runsync']) {
        const { status, json } = await call('POST', `${local.url}/${route}`, { input: {}, webhook });
        expect({ webhook, route, status, error: json.error }).toEqual({
          webhook,
          route,
          status: 400,
          error: expect.stringMatching(message),
        });
      }
    }
    const typed = await call('POST', `${local.url}/run`, { input: {}, webhook: 5 });
    expect(typed).toEqual({ status: 400, json: { error: '`webhook` must be a URL string' } });
    expect((await call('GET', `${local.url}/health`)).json.jobs).toMatchObject({ completed: 0, failed: 0, inQueue: 0, inProgress: 0 });
    expect(ran).toEqual([]);
  });

  it('accepts a public webhook; a private one with ALLOW_PRIVATE_URLS', async () => {
    const local = await start(async () => 'ok', { checkWebhook: guard });
    expect((await call('POST', `${local.url}/run`, { input: {}, webhook: 'https://hooks.example/done' })).json.status).toBe('IN_QUEUE');
    await api?.close(100);
    const hook = await startHookServer([]);
    const open = await start(async () => 'ok', { checkWebhook: createWebhookGuard({ allowPrivate: true, isPrivateAddress }) });
    expect((await call('POST', `${open.url}/run`, { input: {}, webhook: `${hook.url}/h` })).json.status).toBe('IN_QUEUE');
    expect((await hook.received(1))[0]?.body).toMatchObject({ status: 'COMPLETED', output: 'ok' });
  });

  it('delivers to the addresses the check saw, never to a later DNS answer (rebinding)', async () => {
    const hook = await startHookServer([]);
    const port = new URL(hook.url).port;
    // The check answers the receiver's address (taken as public here); the system resolver knows no
    // such name (.test is reserved), so only a connection pinned to the checked address can arrive.
    const asked: string[] = [];
    const pinnedGuard = createWebhookGuard({
      allowPrivate: false,
      isPrivateAddress: () => false,
      lookup: async (host) => {
        asked.push(host);
        return ['127.0.0.1'];
      },
    });
    const local = await start(async () => 'ok', { checkWebhook: pinnedGuard });
    const { json } = await call('POST', `${local.url}/runsync`, { input: {}, webhook: `http://hooks.pinned.test:${port}/hook` });
    expect(json.status).toBe('COMPLETED');
    expect((await hook.received(1))[0]?.body).toMatchObject({ status: 'COMPLETED', output: 'ok' });
    expect(asked).toEqual(['hooks.pinned.test', 'hooks.pinned.test']); // at submission and before delivery
  });

  it('checks again before delivering: a name that now resolves to a private address gets nothing', async () => {
    const answers = [['93.184.216.34'], ['127.0.0.1']];
    const asked = deferred();
    const { logger, lines } = captureLogger();
    const lookup = async (): Promise<string[]> => {
      const next = answers.shift() ?? ['127.0.0.1'];
      if (answers.length === 0) asked.resolve();
      return next;
    };
    const rebinding = createWebhookGuard({ allowPrivate: false, isPrivateAddress, lookup });
    const gate = deferred();
    const local = await start(async () => gate.promise.then(() => 'ok'), { checkWebhook: rebinding, logger });
    const { json } = await call('POST', `${local.url}/run`, { input: {}, webhook: 'http://rebind.example:9/hook' });
    expect(json.status).toBe('IN_QUEUE');
    gate.resolve();
    await asked.promise; // the delivery's own check
    await new Promise((r) => setImmediate(r));
    expect(lines.filter((l) => l.message.startsWith('webhook')).map((l) => [l.message, (l.error as { message: string }).message])).toEqual([
      ['webhook refused; not delivered', expect.stringContaining('resolves to 127.0.0.1, a private')],
    ]);
  });
});

describe('closing', () => {
  const openGuard = createWebhookGuard({ allowPrivate: true, isPrivateAddress });

  it('waits for a webhook still being delivered, its retries included; later calls share the first', async () => {
    const hook = await startHookServer([500, 200]);
    const local = await start(async () => 'ok', { checkWebhook: openGuard });
    const { json } = await call('POST', `${local.url}/runsync`, { input: {}, webhook: `${hook.url}/hook` });
    expect(json.status).toBe('COMPLETED');
    const closing = local.close(5_000);
    expect(local.close(5_000)).toBe(closing);
    await closing;
    expect(hook.count()).toBe(2);
  });

  it('stops a webhook delivery that outlasts the grace period, logging it as not delivered', async () => {
    const held: ServerResponse[] = [];
    const hang = createServer((_req, res) => void held.push(res));
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    cleanups.push(async () => {
      hang.closeAllConnections();
      await new Promise((r) => hang.close(r));
    });
    const { logger, lines } = captureLogger();
    const local = await start(async () => 'ok', { logger, checkWebhook: openGuard });
    const hookUrl = `http://127.0.0.1:${(hang.address() as AddressInfo).port}/hook`;
    expect((await call('POST', `${local.url}/runsync`, { input: {}, webhook: hookUrl })).json.status).toBe('COMPLETED');
    await local.close(50);
    const undelivered = lines.filter((l) => l.message === 'webhook could not be delivered');
    expect(undelivered.map((l) => (l.error as { message: string }).message)).toEqual([
      'the local API shut down before the webhook was delivered',
    ]);
  });
});
