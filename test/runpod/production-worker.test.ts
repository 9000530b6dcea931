import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { formatError, isWorkerError, WorkerError } from '../../src/lib/errors';
import { delay } from '../../src/lib/delay';
import type { Logger } from '../../src/lib/logger';
import { DEFAULT_TIMING, type Handler } from '../../src/runpod';
import { createHttpTransport } from '../../src/runpod/http-transport';
import { ProductionWorker } from '../../src/runpod/production-worker';
import { startFakeJobApi, type FakeJobApi } from '../fakes/runpod-job-api';
import { aborted, API_KEY, captureLogger, deferred, FAST, prodConfig, startWorker, type Running } from './helpers';

let api: FakeJobApi;
let worker: Running | undefined;

beforeEach(async () => {
  api = await startFakeJobApi({ holdMs: 300 });
});
afterEach(async () => {
  await worker?.stop();
  worker = undefined;
  await api.close();
});

const done = (jobId: string, nth = 1): Promise<import('../fakes/runpod-job-api').RecordedRequest> =>
  api.waitFor((r) => r.kind === 'done' && r.jobId === jobId && !(r.body as { status?: string } | undefined)?.status, 15_000, nth);

describe('job take', () => {
  it('long-polls the take URL with the worker id, job_in_progress and the raw key', async () => {
    worker = startWorker(async () => 'ok', prodConfig(api));
    const take = await api.waitFor((r) => r.kind === 'take');
    expect(take.method).toBe('GET');
    expect(take.path).toBe('/v2/ep1/job-take/wrk1');
    expect(take.query.get('gpu')).toBe('NVIDIA H100');
    expect(take.query.get('job_in_progress')).toBe('0');
    expect(take.headers.authorization).toBe(API_KEY);
  });

  it('fills $RUNPOD_POD_ID in the take template and adds ? when it has no query', async () => {
    const config = prodConfig(api, { jobTakeUrl: `${api.url}/v2/ep1/job-take/$RUNPOD_POD_ID` });
    worker = startWorker(async () => 'ok', config);
    const take = await api.waitFor((r) => r.kind === 'take');
    expect(take.path).toBe('/v2/ep1/job-take/wrk1');
    expect(take.query.get('job_in_progress')).toBe('0');
  });

  it('sends the first take before the stop poll, then calls onReady once', async () => {
    const order: string[] = [];
    worker = startWorker(async () => void order.push('job'), prodConfig(api, { pingUrl: api.templates.pingUrl }), {
      onReady: () => order.push('ready'),
    });
    await api.waitFor((r) => r.kind === 'ping');
    await api.waitFor((r) => r.kind === 'stop');
    expect(api.requests.filter((r) => r.kind !== 'ping')[0]?.kind).toBe('take');
    api.addJobs({ id: 'r1', input: {} });
    await done('r1');
    expect(order).toEqual(['ready', 'job']);
  });

  it('talks to the job API through an injected fetch when one is given', async () => {
    const seen: string[] = [];
    const spy: typeof fetch = (input, init) => {
      seen.push(`${init?.method ?? 'GET'} ${new URL(String(input)).pathname}`);
      return fetch(input, init);
    };
    api.addJobs({ id: 'f1', input: {} });
    worker = startWorker(async () => 'ok', prodConfig(api), { fetch: spy });
    expect((await done('f1')).text).toBe('{"output": "ok"}');
    expect(seen).toEqual(expect.arrayContaining(['GET /v2/ep1/job-take/wrk1', 'POST /v2/ep1/job-done/wrk1/f1']));
  });

  it('treats 400 as no job, with a small pause, then runs the next job', async () => {
    api.script('take', { status: 400 });
    worker = startWorker(async () => 'ok', prodConfig(api));
    const first = await api.waitFor((r) => r.kind === 'take');
    const second = await api.waitFor((r) => r.kind === 'take', 5000, 2);
    expect(second.at - first.at).toBeGreaterThanOrEqual(70);
    api.addJobs({ id: 'j1', input: {} });
    expect((await done('j1')).text).toBe('{"output": "ok"}');
  });

  it('waits after a 429 before taking again', async () => {
    api.script('take', { status: 429 });
    worker = startWorker(async () => 'ok', prodConfig(api));
    const first = await api.waitFor((r) => r.kind === 'take');
    const second = await api.waitFor((r) => r.kind === 'take', 5000, 2);
    expect(second.at - first.at).toBeGreaterThanOrEqual(290);
  });

  it('backs off on 500s instead of looping hot, then recovers', async () => {
    api.script('take', ...Array.from({ length: 50 }, () => ({ status: 500 })));
    worker = startWorker(async () => 'ok', prodConfig(api));
    await api.waitFor((r) => r.kind === 'take', 15_000, 5);
    const takes = api.of('take').slice(0, 5);
    // Backoffs of 20, 40, 80, 100 ms, jittered to at least half: a hot loop would leave gaps near 0.
    // Each gap is at least its backoff however slow the machine is (load only adds to it).
    const gaps = takes.slice(1).map((t, i) => t.at - (takes[i] as { at: number }).at);
    expect(gaps.map((g, i) => g >= [10, 20, 40, 50][i]! - 1)).toEqual([true, true, true, true]);
  });

  it('backs off on network errors too', async () => {
    const closed = await startFakeJobApi();
    const deadUrl = closed.templates.jobTakeUrl;
    await closed.close();
    const { lines, stop } = startWorker(async () => 'ok', prodConfig(api, { jobTakeUrl: deadUrl }));
    const failures = () => lines.filter((l) => l.message === 'job take failed; backing off');
    for (let i = 0; i < 1500 && failures().length < 3; i++) await delay(10); // bounded wait: up to 15 s
    await stop();
    // Each failure waits longer than the one before (20, 40, 80 ms, jittered to at least half).
    expect(
      failures()
        .slice(0, 3)
        .map((l) => [l.attempt, (l.delayMs as number) >= [10, 20, 40][(l.attempt as number) - 1]!]),
    ).toEqual([
      [1, true],
      [2, true],
      [3, true],
    ]);
  });

  it('drops a job without input and a non-JSON answer, logging loudly, and keeps going', async () => {
    api.script('take', { status: 200, json: { id: 'no-input' } }, { status: 200, text: 'hello', contentType: 'text/plain' });
    worker = startWorker(async () => 'ok', prodConfig(api));
    await api.waitFor((r) => r.kind === 'take', 5000, 3);
    api.addJobs({ id: 'j2', input: 1 });
    await done('j2');
    expect(api.of('done').map((r) => r.jobId)).toEqual(['j2']);
    expect(worker.lines.some((l) => l.level === 'ERROR' && l.message.includes('without a string `id`'))).toBe(true);
  });

  it('takes a batch when several slots are free and runs the jobs concurrently', async () => {
    const release = deferred();
    const started: string[] = [];
    const handler: Handler = async (job) => {
      started.push(job.id);
      await release.promise;
      return job.id;
    };
    api.addJobs({ id: 'b1', input: {} }, { id: 'b2', input: {} });
    worker = startWorker(handler, prodConfig(api, { concurrency: 3 }));
    const batch = await api.waitFor((r) => r.kind === 'take-batch');
    expect(batch.path).toBe('/v2/ep1/job-take-batch/wrk1');
    expect(batch.query.get('batch_size')).toBe('3');
    expect(batch.query.get('job_in_progress')).toBe('0');
    // One slot left while two jobs run: a single take flagged job_in_progress=1.
    const single = await api.waitFor((r) => r.kind === 'take');
    expect(single.query.get('job_in_progress')).toBe('1');
    expect(started.sort()).toEqual(['b1', 'b2']);
    release.resolve();
    await done('b1');
    await done('b2');
  });

  it('does not take while every slot is busy', async () => {
    const release = deferred();
    api.addJobs({ id: 'busy', input: {} });
    worker = startWorker(async () => release.promise.then(() => 'x'), prodConfig(api));
    await api.waitFor((r) => r.kind === 'take');
    await delay(400);
    expect(api.of('take')).toHaveLength(1);
    release.resolve();
    await done('busy');
    await api.waitFor((r) => r.kind === 'take', 5000, 2);
  });
});

describe('job results', () => {
  it('posts a success in rp-py wire format (form content type, charset, X-Request-ID, raw UTF-8 JSON)', async () => {
    api.addJobs({ id: 'job-1', input: { name: 'x' } });
    worker = startWorker(async (job) => ({ echo: job.input, text: 'héllo ✓' }), prodConfig(api));
    const post = await done('job-1');
    expect(post.method).toBe('POST');
    expect(post.path).toBe('/v2/ep1/job-done/wrk1/job-1');
    expect(post.query.get('isStream')).toBe('false');
    expect(post.query.get('gpu')).toBe('NVIDIA H100');
    expect(post.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(post.headers.charset).toBe('utf-8');
    expect(post.headers['x-request-id']).toBe('job-1');
    expect(post.headers.authorization).toBe(API_KEY);
    expect(post.text).toBe('{"output": {"echo": {"name": "x"}, "text": "héllo ✓"}}');
  });

  it('posts a handler that returns nothing as {"output": null}, like Python\'s None', async () => {
    api.addJobs({ id: 'n1', input: {} });
    worker = startWorker(async () => undefined, prodConfig(api));
    expect((await done('n1')).text).toBe('{"output": null}');
  });

  it('passes a returned error through and maps refresh_worker to stopPod, then keeps running', async () => {
    api.addJobs({ id: 'e1', input: {} }, { id: 'e2', input: {} });
    const handler: Handler = async (job) =>
      job.id === 'e1'
        ? { error: 'COMFY_CRASHED: ComfyUI exited with code 1', refresh_worker: true }
        : { error: 'INVALID_INPUT: width', partial: 1 };
    worker = startWorker(handler, prodConfig(api));
    expect((await done('e1')).text).toBe('{"error": "COMFY_CRASHED: ComfyUI exited with code 1", "stopPod": true}');
    expect((await done('e2')).text).toBe('{"output": {"partial": 1}, "error": "INVALID_INPUT: width"}');
  });

  it('encodes a thrown error twice, as rp-py does', async () => {
    api.addJobs({ id: 't1', input: {} });
    worker = startWorker(async () => {
      throw new WorkerError('INVALID_INPUT', 'bad input é');
    }, prodConfig(api));
    const body = (await done('t1')).body as { error: string };
    expect(Object.keys(body)).toEqual(['error']);
    // The inner text as Python's json.dumps(error_info) writes it: spaced, ASCII-only.
    expect(
      body.error.startsWith(
        `{"error_type": "<class 'WorkerError'>", "error_message": "INVALID_INPUT: bad input \\u00e9", "error_traceback": "`,
      ),
    ).toBe(true);
    const info = JSON.parse(body.error) as Record<string, string>;
    expect(info).toMatchObject({
      error_type: "<class 'WorkerError'>",
      error_message: 'INVALID_INPUT: bad input é',
      hostname: 'h1',
      worker_id: 'wrk1',
      runpod_version: '1.12.0',
    });
    expect(info.error_traceback).toContain('bad input');
  });

  it('names the worker id it takes jobs with and the machine hostname in error payloads when RunPod sets neither', async () => {
    api.addJobs({ id: 't2', input: {} });
    worker = startWorker(
      async () => {
        throw new Error('boom');
      },
      prodConfig(api, { podId: undefined, podHostname: undefined }),
    );
    const post = await done('t2');
    const take = api.of('take')[0];
    expect(take?.workerId).toMatch(/^[0-9a-f-]{36}$/);
    expect(post.workerId).toBe(take?.workerId);
    const info = JSON.parse((post.body as { error: string }).error) as Record<string, string>;
    expect(info).toMatchObject({ worker_id: take?.workerId, hostname: os.hostname() });
  });

  it('adds stopPod to every result with REFRESH_WORKER and exits 0 after the post', async () => {
    api.addJobs({ id: 'r1', input: {} });
    worker = startWorker(async () => ({ ok: true }), prodConfig(api, { refreshWorker: true }));
    expect((await done('r1')).text).toBe('{"output": {"ok": true}, "stopPod": true}');
    await expect(worker.exit).resolves.toBe(0);
  });

  it('retries a result after a 500 on the first post and never loses it', async () => {
    api.script('done', { status: 500 });
    api.addJobs({ id: 'p1', input: {} });
    worker = startWorker(async () => 42, prodConfig(api));
    const second = await done('p1', 2);
    expect(second.text).toBe('{"output": 42}');
    expect((api.of('done')[0] as { text: string }).text).toBe('{"output": 42}');
  });

  it('retries on 429 and network-level failures, not on other 4xx (logged as lost)', async () => {
    api.script('done', { status: 429 }, { status: 404 });
    api.addJobs({ id: 'p2', input: {} });
    worker = startWorker(async () => 1, prodConfig(api));
    await done('p2', 2);
    await api.waitFor((r) => r.kind === 'take', 5000, 2);
    await delay(100);
    expect(api.of('done')).toHaveLength(2);
    expect(worker.lines.some((l) => l.level === 'ERROR' && l.message.startsWith('JOB RESULT LOST'))).toBe(true);
  });

  it('posts an error instead of output JSON cannot carry or that is too large', async () => {
    api.addJobs({ id: 'big', input: {} }, { id: 'bigint', input: {} });
    const handler: Handler = async (job) => (job.id === 'big' ? 'x'.repeat(500) : { n: 10n });
    worker = startWorker(handler, prodConfig(api), { timing: { ...(await import('./helpers')).FAST, maxResultBytes: 300 } });
    expect(((await done('big')).body as { error: string }).error).toMatch(/^OUTPUT_TOO_LARGE: /);
    expect(((await done('bigint')).body as { error: string }).error).toMatch(/^INTERNAL: .*cannot be encoded as JSON/);
  });
});

describe('job ids in URLs', () => {
  // Ids RunPod would never mint, but a worker must not turn into another URL or id.
  const ODD_IDS = [
    'a/../b',
    '../up',
    'x%2Fy',
    '%',
    'q?x=1&y=2',
    'h#frag',
    'sp ace',
    'ünï-任务',
    'a+b',
    '$ID',
    '$RUNPOD_POD_ID',
    '.hidden',
    'a\\b',
  ];

  it('posts every result, progress update and stream chunk under exactly its own id', async () => {
    const handler: Handler = async function* (job, ctx) {
      ctx.progress({ of: job.id });
      yield { chunkOf: job.id };
    };
    worker = startWorker(handler, prodConfig(api, { concurrency: 4 }), { returnAggregateStream: true });
    api.addJobs(...ODD_IDS.map((id) => ({ id, input: {} })));
    for (const id of ODD_IDS) expect((await done(id)).body).toEqual({ output: [{ chunkOf: id }] });
    const finals = api.of('done').filter((r) => r.query.get('isStream') === 'true');
    expect(finals.map((r) => r.jobId).sort()).toEqual([...ODD_IDS].sort());
    for (const r of finals) {
      expect(r.path).toBe(`/v2/ep1/job-done/wrk1/${encodeURIComponent(r.jobId as string)}`);
      expect(r.headers['x-request-id']).toBe(encodeURIComponent(r.jobId as string));
    }
    const chunks = api.of('stream');
    expect(chunks).toHaveLength(ODD_IDS.length);
    for (const r of chunks) expect(r.body).toEqual({ output: { chunkOf: r.jobId } });
    for (const r of api.of('done').filter((p) => (p.body as { status?: string }).status === 'IN_PROGRESS')) {
      expect(r.body).toEqual({ status: 'IN_PROGRESS', output: { of: r.jobId } });
    }
  });

  it('encodes the worker id in the take, stop, result and ping URLs', async () => {
    const release = deferred();
    const podId = 'pod/1 ü?#';
    worker = startWorker(async () => release.promise.then(() => 'x'), prodConfig(api, { podId, pingUrl: api.templates.pingUrl }));
    api.addJobs({ id: 'j/1', input: {} });
    const ping = await api.waitFor((r) => r.kind === 'ping' && r.query.get('job_id') === 'j/1', 4000);
    release.resolve();
    const result = await done('j/1');
    const stop = await api.waitFor((r) => r.kind === 'stop');
    const take = await api.waitFor((r) => r.kind === 'take');
    for (const r of [take, stop, ping, result]) expect(r.workerId).toBe(podId);
    expect(ping.url).toContain('job_id=j%2F1&');
  });

  it('drops a job whose id no URL can carry, logging it, and serves the next', async () => {
    api.script('take', { status: 200, json: { id: '..', input: {} } }, { status: 200, json: { id: '', input: {} } });
    const ran: string[] = [];
    worker = startWorker(async (job) => ran.push(job.id), prodConfig(api));
    await api.waitFor((r) => r.kind === 'take', 5000, 3);
    api.addJobs({ id: 'j2', input: 1 });
    await done('j2');
    expect(ran).toEqual(['j2']);
    expect(api.of('done').map((r) => r.jobId)).toEqual(['j2']);
    expect(worker.lines.filter((l) => l.level === 'ERROR' && l.message.includes('no URL can carry'))).toHaveLength(2);
  });
});

describe('progress and streaming', () => {
  it('sends progress in order, throttled with the latest winning, and never after the result', async () => {
    // Driven by what the fake has received, not by sleeps (the throttle's timing: units.test.ts).
    const received = (step: number): Promise<unknown> =>
      api.waitFor((r) => r.jobId === 'g1' && (r.body as { output?: { step?: number } }).output?.step === step);
    const handler: Handler = async (_job, ctx) => {
      ctx.progress({ step: 1 });
      await received(1);
      ctx.progress({ step: 2 });
      ctx.progress({ step: 3 });
      await received(3);
      ctx.progress({ step: 4 });
      return 'fin';
    };
    api.addJobs({ id: 'g1', input: {} });
    worker = startWorker(handler, prodConfig(api), { timing: { ...(await import('./helpers')).FAST, progressIntervalMs: 1000 } });
    await done('g1');
    // Step 4 was still waiting for its turn when the result was queued: it is never sent.
    await delay(300);
    const posts = api.of('done').filter((r) => r.jobId === 'g1');
    expect(posts.map((p) => p.text)).toEqual([
      '{"status": "IN_PROGRESS", "output": {"step": 1}}',
      '{"status": "IN_PROGRESS", "output": {"step": 3}}',
      '{"output": "fin"}',
    ]);
    expect(posts.every((p) => p.query.get('isStream') === 'false')).toBe(true);
  });

  it('posts each yielded chunk to the stream URL, then an empty output with isStream=true', async () => {
    async function* handler(): AsyncGenerator<unknown> {
      yield 1;
      yield { frame: 2 };
    }
    api.addJobs({ id: 's1', input: {} });
    worker = startWorker(handler, prodConfig(api));
    const final = await done('s1');
    const chunks = api.of('stream');
    expect(chunks.map((c) => [c.path, c.query.get('isStream'), c.text])).toEqual([
      ['/v2/ep1/job-stream/wrk1/s1', 'false', '{"output": 1}'],
      ['/v2/ep1/job-stream/wrk1/s1', 'false', '{"output": {"frame": 2}}'],
    ]);
    expect(final.query.get('isStream')).toBe('true');
    expect(final.text).toBe('{"output": []}');
  });

  it('aggregates chunks with returnAggregateStream; a yielded error or a throw fails the job', async () => {
    const handler: Handler = async function* (job) {
      yield 'a';
      if (job.id === 'yerr') yield { error: 'boom' };
      if (job.id === 'throw') throw new Error('kaput');
      yield 'b';
    };
    api.addJobs({ id: 'agg', input: {} }, { id: 'yerr', input: {} }, { id: 'throw', input: {} });
    worker = startWorker(handler, prodConfig(api), { returnAggregateStream: true });
    expect((await done('agg')).text).toBe('{"output": ["a", "b"]}');
    expect((await done('yerr')).text).toBe('{"error": "boom"}');
    const thrown = await done('throw');
    expect(thrown.query.get('isStream')).toBe('true');
    expect((thrown.body as { error: string }).error).toMatch(/^handler: kaput \ntraceback: Error: kaput/);
    expect(
      api
        .of('stream')
        .filter((r) => r.jobId === 'yerr')
        .map((r) => r.text),
    ).toEqual(['{"output": "a"}']);
  });
});

describe('stop, timeout and abandonment', () => {
  it('cancels a job named by the stop poll and posts nothing for it', async () => {
    const reasons: unknown[] = [];
    const handler: Handler = async (job, ctx) => {
      if (job.id !== 'c1') return 'next';
      const reason = await aborted(ctx.signal);
      reasons.push(reason);
      throw reason;
    };
    api.addJobs({ id: 'c1', input: {} });
    worker = startWorker(handler, prodConfig(api));
    const stopPoll = await api.waitFor((r) => r.kind === 'stop');
    expect(stopPoll.path).toBe('/v2/ep1/job-stop/wrk1');
    expect(stopPoll.query.get('gpu')).toBe('NVIDIA H100');
    expect(stopPoll.query.has('job_in_progress')).toBe(false);
    expect(stopPoll.headers.authorization).toBe(API_KEY);
    await api.waitFor((r) => r.kind === 'take', 5000, 1);
    api.stopJobs([7, 'c1']);
    await api.waitFor((r) => r.kind === 'take' && r.query.get('job_in_progress') === '0', 5000, 2);
    api.addJobs({ id: 'c2', input: {} });
    await done('c2');
    expect(isWorkerError(reasons[0], 'CANCELLED')).toBe(true);
    expect(api.of('done').map((r) => r.jobId)).toEqual(['c2']);
  });

  it('aborts a job that outlives JOB_TIMEOUT_S with a TIMEOUT reason; the handler reports it', async () => {
    api.addJobs({ id: 'slow', input: {} });
    worker = startWorker(async (_job, ctx) => ({ error: formatError(await aborted(ctx.signal)) }), prodConfig(api, { jobTimeoutMs: 150 }));
    expect(((await done('slow')).body as { error: string }).error).toMatch(/^TIMEOUT: the job ran longer than JOB_TIMEOUT_S/);
  });

  it('reports a job whose handler ignores the abort, after the abandon grace', async () => {
    api.addJobs({ id: 'deaf', input: {} });
    worker = startWorker(() => new Promise(() => {}), prodConfig(api, { jobTimeoutMs: 100 }));
    const post = await done('deaf');
    expect((post.body as { error: string }).error).toMatch(/^TIMEOUT: .*did not stop within 300 ms/);
  });
});

describe('shutdown', () => {
  it('stops taking at once, finishes the running job, posts it and resolves 0', async () => {
    const release = deferred();
    const running = deferred();
    api.addJobs({ id: 'sd1', input: {} });
    worker = startWorker(async () => {
      running.resolve();
      await release.promise;
      return 'finished';
    }, prodConfig(api));
    await running.promise;
    const exit = worker.stop();
    const takesAtStop = api.of('take').length;
    await delay(100);
    release.resolve();
    await expect(exit).resolves.toBe(0);
    expect((await done('sd1')).text).toBe('{"output": "finished"}');
    expect(api.of('take')).toHaveLength(takesAtStop);
  });

  it('aborts the job when the grace period ends and still posts its result', async () => {
    api.addJobs({ id: 'sd2', input: {} });
    const started = deferred();
    let reason: unknown;
    worker = startWorker(
      async (_job, ctx) => {
        started.resolve();
        reason = await aborted(ctx.signal);
        return { error: formatError(reason) };
      },
      prodConfig(api, { shutdownGraceMs: 100 }),
    );
    await started.promise;
    await expect(worker.stop()).resolves.toBe(0);
    expect(isWorkerError(reason, 'TIMEOUT') && reason.details.reason).toBe('shutdown');
    expect(((await done('sd2')).body as { error: string }).error).toMatch(/^TIMEOUT: the worker is shutting down/);
  });

  it('calls onShutdown after draining', async () => {
    const calls: string[] = [];
    worker = startWorker(async () => 'x', prodConfig(api), { onShutdown: async () => void calls.push('down') });
    await api.waitFor((r) => r.kind === 'take');
    await worker.stop();
    expect(calls).toEqual(['down']);
  });
});

describe('close()', () => {
  const productionWorker = (handler: Handler, logger: Logger): ProductionWorker =>
    new ProductionWorker({
      config: prodConfig(api),
      hostname: 'h1',
      handler,
      logger,
      transport: createHttpTransport(),
      timing: { ...DEFAULT_TIMING, ...FAST },
      returnAggregateStream: false,
      userAgent: 'test',
    });

  it('is one shutdown however often it is called: the job is posted once, the worker stops once', async () => {
    const { logger, lines } = captureLogger();
    const running = deferred();
    const release = deferred();
    const w = productionWorker(async () => {
      running.resolve();
      await release.promise;
      return 'once';
    }, logger);
    api.addJobs({ id: 'c1', input: {} });
    const exit = w.run();
    await running.promise;
    const closing = w.close();
    expect(w.close()).toBe(closing);
    release.resolve();
    await closing;
    await expect(exit).resolves.toBe(0);
    expect(api.of('done').map((r) => r.text)).toEqual(['{"output": "once"}']);
    expect(lines.filter((l) => l.message === 'worker stopped')).toHaveLength(1);
  });

  it('before run(): run() then starts nothing and resolves 0', async () => {
    const { logger, lines } = captureLogger();
    const w = productionWorker(async () => 'x', logger);
    await w.close();
    await expect(w.run()).resolves.toBe(0);
    expect(api.requests).toEqual([]);
    expect(lines.some((l) => l.message === 'worker started')).toBe(false);
  });

  it('runs every later step when one fails: a take loop that breaks still drains and posts the running job, then stops', async () => {
    const { logger, lines } = captureLogger();
    const broke = deferred();
    // A bug in the take loop: logging the 429 answer throws.
    const faulty: Logger = {
      ...logger,
      warn: (message, fields) => {
        if (!message.startsWith('job take throttled')) return logger.warn(message, fields);
        broke.resolve();
        throw new Error('take loop bug');
      },
    };
    const release = deferred();
    api.script('take', { status: 429 }); // the single take after the batch take that brings the job
    api.addJobs({ id: 'kept', input: {} });
    const shutDown: string[] = [];
    const exit = startWorker(async () => release.promise.then(() => 'posted anyway'), prodConfig(api, { concurrency: 2 }), {
      logger: faulty,
      onShutdown: async () => void shutDown.push('down'),
    }).exit;
    await broke.promise;
    release.resolve(); // the job was still running when the step failed
    await expect(exit).resolves.toBe(1);
    expect(api.of('done').map((r) => [r.jobId, r.text])).toEqual([['kept', '{"output": "posted anyway"}']]);
    expect(lines.find((l) => l.step === 'stop taking jobs')).toMatchObject({ level: 'ERROR', error: { message: 'take loop bug' } });
    expect(lines.some((l) => l.message === 'worker stopped')).toBe(true);
    expect(shutDown).toEqual(['down']);
  });

  it('logs an onShutdown that throws under its step and still resolves the exit code', async () => {
    worker = startWorker(async () => 'x', prodConfig(api), {
      onShutdown: async () => {
        throw new Error('engine would not stop');
      },
    });
    await api.waitFor((r) => r.kind === 'take');
    await expect(worker.stop()).resolves.toBe(0);
    expect(worker.lines.find((l) => l.step === 'onShutdown')).toMatchObject({
      level: 'ERROR',
      error: { message: 'engine would not stop' },
    });
  });
});

describe('heartbeat and logs', () => {
  it('pings at once from a worker thread, with running job ids and the raw key', async () => {
    const release = deferred();
    worker = startWorker(async () => release.promise.then(() => 'x'), prodConfig(api, { pingUrl: api.templates.pingUrl }));
    const first = await api.waitFor((r) => r.kind === 'ping', 15_000);
    expect(first.path).toBe('/v2/ep1/ping/wrk1');
    expect(first.query.get('gpu')).toBe('NVIDIA H100');
    expect(first.query.has('job_id')).toBe(false);
    expect(first.query.get('runpod_version')).toBe('1.12.0');
    expect(first.headers.authorization).toBe(API_KEY);
    api.addJobs({ id: 'hb1', input: {} });
    const withJob = await api.waitFor((r) => r.kind === 'ping' && r.query.get('job_id') === 'hb1', 15_000);
    // One ping per interval (1 s here), not a tight loop: the job's id rides on the next one.
    expect(api.of('ping').filter((r) => r.at <= withJob.at).length).toBeLessThanOrEqual(3);
    release.resolve();
    await done('hb1');
  });

  it("lists several running jobs in one job_id, encoded as rp-py's requests does (a%2Cb)", async () => {
    const release = deferred();
    worker = startWorker(async () => release.promise.then(() => 'x'), prodConfig(api, { pingUrl: api.templates.pingUrl, concurrency: 2 }));
    api.addJobs({ id: 'hb1', input: {} }, { id: 'hb 2!', input: {} });
    const both = await api.waitFor((r) => r.kind === 'ping' && (r.query.get('job_id') ?? '').includes(','), 15_000);
    expect(both.url).toBe('/v2/ep1/ping/wrk1?gpu=NVIDIA+H100&job_id=hb1%2Chb+2%21&runpod_version=1.12.0');
    release.resolve();
    await done('hb1');
  });

  it('retries a ping cut off by the network or answered 503, then goes on pinging', async () => {
    const answers: ('cut' | number)[] = ['cut', 503, 200];
    const seen: string[] = [];
    const pings = createServer((req, res) => {
      const answer = answers.shift() ?? 200;
      seen.push(String(answer));
      if (answer === 'cut') req.socket.destroy();
      else res.writeHead(answer).end();
    });
    await new Promise<void>((r) => pings.listen(0, '127.0.0.1', r));
    try {
      const pingUrl = `http://127.0.0.1:${(pings.address() as AddressInfo).port}/v2/ep1/ping/$RUNPOD_POD_ID`;
      worker = startWorker(async () => 'ok', prodConfig(api, { pingUrl, pingIntervalMs: 60_000 }));
      // All three attempts belong to the first ping: the next one is a minute away.
      for (let i = 0; i < 250 && seen.length < 3; i++) await delay(20);
      await api.waitFor((r) => r.kind === 'take', 5000, 2);
      expect(seen).toEqual(['cut', '503', '200']);
      expect(worker.lines.filter((l) => l.message === 'heartbeat ping failed')).toEqual([]);
    } finally {
      pings.closeAllConnections();
      await new Promise((r) => pings.close(r));
    }
  });

  it('logs JSON lines carrying the job id as requestId (null outside jobs on an endpoint)', async () => {
    api.addJobs({ id: 'log1', input: {} });
    worker = startWorker(
      async (_job, ctx) => {
        ctx.logger.info('inside');
        return 1;
      },
      prodConfig(api, { endpointId: 'ep1' }),
    );
    await done('log1');
    const inside = worker.lines.find((l) => l.message === 'inside');
    expect(inside?.requestId).toBe('log1');
    expect(worker.lines.find((l) => l.message === 'worker started')?.requestId).toBeNull();
  });
});
