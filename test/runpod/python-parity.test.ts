// Opt-in wire parity against the real thing: runpod-python's worker (RUNPOD_PYTHON = a python with
// `runpod==1.12.0` installed) and our worker run the same jobs, with mirrored handlers
// (fixtures/parity_worker.py, fixtures/parity-entry.ts), against the fake job API; every request
// either sends is compared — URL and raw query, protocol headers, body bytes. Differences the
// reference marks [TS+] are listed in INTENDED below; anything else fails the test.
//
//   python3 -m venv /work/rp-venv && /work/rp-venv/bin/pip install runpod==1.12.0
//   RUNPOD_PYTHON=/work/rp-venv/bin/python npm test -- test/runpod/python-parity
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { startFakeJobApi, type FakeJobApi, type RecordedRequest } from '../fakes/runpod-job-api';
import { API_KEY } from './helpers';

const PYTHON = process.env.RUNPOD_PYTHON;
const here = path.dirname(fileURLToPath(import.meta.url));
const describeIfPython = PYTHON ? describe : describe.skip;

/** Headers that say who the client is, not what the protocol is (rp-py: aiohttp / requests; ours: undici). */
const CLIENT_HEADERS = new Set(['host', 'user-agent', 'accept', 'accept-encoding', 'accept-language', 'sec-fetch-mode', 'connection']);
/** Follows from the body, which is compared byte for byte on its own. */
const BODY_HEADERS = new Set(['content-length']);
/** rp-py sets X-Request-ID on its shared session, so it leaks onto later GETs (a quirk, not contract). */
const GET_QUIRK_HEADERS = new Set(['x-request-id']);

type Mode = 'plain' | 'stream' | 'stream-aggregate' | 'batch' | 'refresh';
type Which = 'python' | 'ours';

interface Recording {
  requests: RecordedRequest[];
  exitCode: number | null;
  output: string;
}

let tmp: string;
let bundle: string;

beforeAll(async () => {
  if (!PYTHON) return;
  tmp = await mkdtemp(path.join(os.tmpdir(), 'rp-parity-'));
  bundle = path.join(tmp, 'parity-worker.cjs');
  await build({
    entryPoints: [path.join(here, 'fixtures/parity-entry.ts')],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    logLevel: 'warning',
  });
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

function workerEnv(api: FakeJobApi, mode: Mode): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    // rp-py reads ~/.runpod/config.toml before RUNPOD_AI_API_KEY: keep the developer's out of it.
    HOME: tmp,
    PARITY_MODE: mode,
    RUNPOD_WEBHOOK_GET_JOB: api.templates.jobTakeUrl,
    RUNPOD_WEBHOOK_POST_OUTPUT: api.templates.jobDoneUrl,
    RUNPOD_WEBHOOK_POST_STREAM: api.templates.jobStreamUrl,
    RUNPOD_WEBHOOK_PING: api.templates.pingUrl,
    RUNPOD_AI_API_KEY: API_KEY,
    RUNPOD_POD_ID: 'wrk1',
    RUNPOD_POD_HOSTNAME: 'h1',
    RUNPOD_PING_INTERVAL: '1000',
    RUNPOD_LOG_LEVEL: 'INFO',
    // rp-py's fitness checks (GPU, 8.8.8.8:53, …) would fail here; ours has none.
    RUNPOD_SKIP_GPU_CHECK: 'true',
    RUNPOD_SKIP_AUTO_SYSTEM_CHECKS: 'true',
    ...(mode === 'batch' ? { WORKER_CONCURRENCY: '2' } : {}),
    ...(mode === 'refresh' ? { REFRESH_WORKER: 'true' } : {}),
  };
}

const isFinal = (id: string) => (r: RecordedRequest) =>
  r.kind === 'done' && r.jobId === id && (r.body as { status?: unknown } | undefined)?.status !== 'IN_PROGRESS';

/** Feeds the mode's jobs one at a time (the next once the last is settled), then stops the worker. */
async function drive(api: FakeJobApi, mode: Mode): Promise<void> {
  const job = (c: string, holdS = 0.3, id = `job-${c}`) => ({ id, input: { case: c, holdS } });
  const T = 20_000;
  if (mode === 'plain') {
    for (const c of ['ok', 'scalar', 'none', 'empty', 'returned-error', 'error-only', 'refresh', 'thrown', 'progress']) {
      api.addJobs(job(c));
      await api.waitFor(isFinal(`job-${c}`), T);
    }
    api.addJobs(job('wait-stop'));
    await api.waitFor((r) => r.kind === 'done' && r.jobId === 'job-wait-stop', T);
    await api.waitFor((r) => r.kind === 'ping' && r.query.get('job_id') === 'job-wait-stop', T);
    const stopped = api.requests.length;
    api.stopJobs(['job-wait-stop']);
    // Stopped: nothing posted; the next take says no job is in progress.
    await api.waitFor((r) => r.kind === 'take' && api.requests.indexOf(r) > stopped && r.query.get('job_in_progress') === '0', T);
    api.addJobs(job('ok', 0.3, 'job-ok-after-stop'));
    await api.waitFor(isFinal('job-ok-after-stop'), T);
  } else if (mode === 'batch') {
    api.addJobs(job('slow', 3.5));
    await api.waitFor((r) => r.kind === 'take' && r.query.get('job_in_progress') === '1', T);
    await api.waitFor((r) => r.kind === 'ping' && r.query.get('job_id') === 'job-slow', T);
    // A second job while the first runs: pings then carry both ids.
    api.addJobs(job('slow', 2, 'job-slow-b'));
    await api.waitFor((r) => r.kind === 'ping' && r.query.get('job_id')?.split(',').length === 2, T);
    await api.waitFor(isFinal('job-slow-b'), T);
    await api.waitFor(isFinal('job-slow'), T);
  } else if (mode === 'refresh') {
    api.addJobs(job('ok'));
    await api.waitFor(isFinal('job-ok'), T);
    return; // the worker exits by itself
  } else {
    for (const c of ['stream', 'stream-error', 'stream-thrown']) {
      api.addJobs(job(c));
      await api.waitFor(isFinal(`job-${c}`), T);
    }
  }
  // One idle ping (no job_id) before stopping.
  const now = api.requests.length;
  await api.waitFor((r) => r.kind === 'ping' && api.requests.indexOf(r) >= now && !r.query.has('job_id'), T);
}

async function record(which: Which, mode: Mode): Promise<Recording> {
  const api = await startFakeJobApi({ holdMs: 1500 });
  const [cmd, args] =
    which === 'python' ? [PYTHON as string, [path.join(here, 'fixtures/parity_worker.py')]] : [process.execPath, [bundle]];
  const child = spawn(cmd, args, { cwd: tmp, env: workerEnv(api, mode), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    await drive(api, mode);
    if (mode !== 'refresh') child.kill('SIGTERM');
    const exitCode = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 15_000).unref())]);
    if (exitCode === 'hung') throw new Error(`${which} worker did not exit`);
    return { requests: [...api.requests], exitCode, output };
  } catch (err) {
    throw new Error(`${which} worker, mode ${mode}: ${(err as Error).message}\n--- its output ---\n${output.slice(-4000)}`, { cause: err });
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await api.close();
  }
}

// ---------------------------------------------------------------- comparison

/** Protocol headers of one request: everything but client identity (and, on GETs, rp-py's leaked X-Request-ID). */
function protocolHeaders(r: RecordedRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.headers)) {
    if (CLIENT_HEADERS.has(k) || BODY_HEADERS.has(k) || (r.method === 'GET' && GET_QUIRK_HEADERS.has(k))) continue;
    out[k] = Array.isArray(v) ? v.join(', ') : String(v);
  }
  return out;
}

/** JSON text with every string literal's content blanked: what is left is layout (spacing, order, nesting). */
function layout(text: string): string {
  return text.replace(/"(?:[^"\\]|\\.)*"/g, '""');
}

interface PythonError {
  error_type: string;
  error_message: string;
  error_traceback: string;
  [k: string]: string;
}

/** rp-py's double-encoded handler error, if this body carries one. */
function thrownError(body: unknown): { raw: string; info: PythonError } | undefined {
  const raw = (body as { error?: unknown } | undefined)?.error;
  if (typeof raw !== 'string' || !raw.startsWith('{')) return undefined;
  const info = JSON.parse(raw) as PythonError;
  return typeof info.error_traceback === 'string' ? { raw, info } : undefined;
}

/**
 * Compares two job posts. Bodies must be byte-identical, except where the content is the language's
 * own: a thrown error's type and traceback, a stream error's traceback. Those are masked, and their
 * layout (separators, key order, escaping) is still compared.
 */
function compareBodies(where: string, py: RecordedRequest, ours: RecordedRequest, diffs: string[]): void {
  const pyThrown = thrownError(py.body);
  if (pyThrown) {
    const ourThrown = thrownError(ours.body);
    if (!ourThrown) return void diffs.push(`${where}: body ${ours.text} is not a double-encoded error like ${py.text}`);
    if (layout(py.text) !== layout(ours.text)) diffs.push(`${where}: outer layout ${layout(ours.text)} ≠ python ${layout(py.text)}`);
    if (layout(pyThrown.raw) !== layout(ourThrown.raw))
      diffs.push(`${where}: error JSON layout ${layout(ourThrown.raw)} ≠ python ${layout(pyThrown.raw)}`);
    const ascii = /^[\x20-\x7e]*$/;
    if (ascii.test(pyThrown.raw) !== ascii.test(ourThrown.raw))
      diffs.push(`${where}: error JSON ASCII-only ${ascii.test(ourThrown.raw)} ≠ python ${ascii.test(pyThrown.raw)}`);
    const mask = (i: PythonError) => ({
      ...i,
      error_type: /^<class '\w+'>$/.test(i.error_type) ? '<class>' : i.error_type,
      error_traceback: i.error_traceback.length > 0 ? '<tb>' : '',
    });
    const [a, b] = [mask(pyThrown.info), mask(ourThrown.info)];
    if (JSON.stringify(a) !== JSON.stringify(b)) diffs.push(`${where}: error fields ${JSON.stringify(b)} ≠ python ${JSON.stringify(a)}`);
    return;
  }
  const pyError = (py.body as { error?: unknown } | undefined)?.error;
  if (typeof pyError === 'string' && pyError.includes('\ntraceback: ')) {
    const prefix = (s: string) => s.slice(0, s.indexOf('\ntraceback: ') + '\ntraceback: '.length);
    const ourError = (ours.body as { error?: unknown } | undefined)?.error;
    if (typeof ourError !== 'string' || prefix(ourError) !== prefix(pyError))
      diffs.push(`${where}: stream error ${JSON.stringify(ourError)} ≠ python ${JSON.stringify(pyError)}`);
    if (layout(py.text) !== layout(ours.text)) diffs.push(`${where}: layout ${layout(ours.text)} ≠ python ${layout(py.text)}`);
    return;
  }
  if (py.text !== ours.text) diffs.push(`${where}: body ${ours.text} ≠ python ${py.text}`);
}

function compareRequest(where: string, py: RecordedRequest, ours: RecordedRequest, diffs: string[]): void {
  if (py.method !== ours.method) diffs.push(`${where}: method ${ours.method} ≠ python ${py.method}`);
  if (py.url !== ours.url) diffs.push(`${where}: url ${ours.url} ≠ python ${py.url}`);
  const [ph, oh] = [protocolHeaders(py), protocolHeaders(ours)];
  if (JSON.stringify(Object.entries(ph).sort()) !== JSON.stringify(Object.entries(oh).sort())) {
    diffs.push(`${where}: headers ${JSON.stringify(oh)} ≠ python ${JSON.stringify(ph)}`);
  }
}

/**
 * Pings name whichever jobs run at that moment, which is timing: compare only idle pings and those
 * naming a job the driver holds until it has seen such a ping.
 */
const HELD_JOBS = new Set(['job-wait-stop', 'job-slow', 'job-slow,job-slow-b']);
const comparablePing = (r: RecordedRequest): boolean =>
  !r.query.has('job_id') || HELD_JOBS.has((r.query.get('job_id') ?? '').split(',').sort().join());

/** rp-py lists ids in set order (random per process): sort them inside the raw query, keeping their encoding. */
function sortedPingIds(r: RecordedRequest): RecordedRequest {
  const url = r.url.replace(/([?&]job_id=)([^&]*)/, (_, key: string, raw: string) => {
    const sep = raw.includes('%2C') ? '%2C' : ',';
    return key + raw.split(sep).sort().join(sep);
  });
  return { ...r, url };
}

/** The first request of each distinct URL of a kind (takes, stop polls and pings repeat on timers). */
function distinctByUrl(rs: RecordedRequest[]): Map<string, RecordedRequest> {
  const m = new Map<string, RecordedRequest>();
  for (const r of rs) if (!m.has(r.url)) m.set(r.url, r);
  return m;
}

function compare(py: Recording, ours: Recording): string[] {
  const diffs: string[] = [];
  if (py.exitCode !== ours.exitCode) diffs.push(`exit code ${ours.exitCode} ≠ python ${py.exitCode}`);

  // Job posts (done, stream): per job, in order, each compared in full.
  const posts = (rec: Recording) => rec.requests.filter((r) => r.kind === 'done' || r.kind === 'stream');
  const jobIds = [...new Set([...posts(py), ...posts(ours)].map((r) => r.jobId ?? '?'))];
  for (const id of jobIds) {
    const [a, b] = [posts(py).filter((r) => r.jobId === id), posts(ours).filter((r) => r.jobId === id)];
    if (a.length !== b.length) {
      diffs.push(
        `job ${id}: ${b.length} posts (${b.map((r) => r.kind).join(', ')}) ≠ python ${a.length} (${a.map((r) => r.kind).join(', ')})`,
      );
    }
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      const where = `job ${id} post #${i + 1} (${(a[i] as RecordedRequest).kind})`;
      compareRequest(where, a[i] as RecordedRequest, b[i] as RecordedRequest, diffs);
      compareBodies(where, a[i] as RecordedRequest, b[i] as RecordedRequest, diffs);
    }
  }

  // Polls and pings: the same set of distinct URLs, each with the same protocol headers.
  for (const kind of ['take', 'take-batch', 'stop', 'ping'] as const) {
    const of = (rec: Recording) => rec.requests.filter((r) => r.kind === kind && (kind !== 'ping' || comparablePing(r))).map(sortedPingIds);
    const [a, b] = [distinctByUrl(of(py)), distinctByUrl(of(ours))];
    const [ak, bk] = [[...a.keys()].sort(), [...b.keys()].sort()];
    if (JSON.stringify(ak) !== JSON.stringify(bk)) diffs.push(`${kind} URLs ${JSON.stringify(bk)} ≠ python ${JSON.stringify(ak)}`);
    for (const [url, r] of a) {
      const o = b.get(url);
      if (o) compareRequest(`${kind} ${url}`, r, o, diffs);
    }
  }
  return diffs;
}

async function parity(mode: Mode): Promise<void> {
  const [py, ours] = await Promise.all([record('python', mode), record('ours', mode)]);
  // The comparison only means something if the reference actually did the work.
  expect(py.requests.some((r) => r.kind === 'done')).toBe(true);
  expect(compare(py, ours)).toEqual([]);
}

describeIfPython('wire parity with runpod-python 1.12.0 (RUNPOD_PYTHON)', () => {
  it(
    'plain handler: outputs, returned and thrown errors, refresh_worker, progress, a job stopped via the stop poll',
    () => parity('plain'),
    90_000,
  );
  it('generator handler: chunks, a yielded error, a throw, final {"output": []}', () => parity('stream'), 60_000);
  it('generator handler with return_aggregate_stream', () => parity('stream-aggregate'), 60_000);
  it('concurrency 2: batch take, job_in_progress=1 while a job runs, pings naming two jobs', () => parity('batch'), 60_000);
  it('config refresh_worker: stopPod on the result, then the worker exits', () => parity('refresh'), 60_000);
});

describe('python parity comparison', () => {
  // The comparison itself must be able to fail (runs without Python).
  const req = (over: Partial<RecordedRequest>): RecordedRequest => ({
    kind: 'done',
    method: 'POST',
    path: '/v2/ep1/job-done/wrk1/j1',
    url: '/v2/ep1/job-done/wrk1/j1?gpu=x&isStream=false',
    query: new URLSearchParams('gpu=x&isStream=false'),
    headers: {
      authorization: 'k',
      'content-type': 'application/x-www-form-urlencoded',
      charset: 'utf-8',
      'x-request-id': 'j1',
      'user-agent': 'a',
    },
    text: '{"output": 1}',
    body: { output: 1 },
    workerId: 'wrk1',
    jobId: 'j1',
    at: 0,
    ...over,
  });
  const rec = (...requests: RecordedRequest[]): Recording => ({ requests, exitCode: 0, output: '' });

  it('accepts identical traffic and ignores client-identity headers', () => {
    expect(compare(rec(req({})), rec(req({ headers: { ...req({}).headers, 'user-agent': 'b', connection: 'keep-alive' } })))).toEqual([]);
  });

  it('reports body bytes, URLs, protocol headers, missing posts and exit codes', () => {
    const diffs = compare(rec(req({}), req({ text: '{"output": 2}', body: { output: 2 } })), {
      ...rec(req({ text: '{"output":1}' })),
      exitCode: 1,
    });
    expect(diffs).toEqual([
      expect.stringContaining('exit code'),
      expect.stringContaining('1 posts'),
      expect.stringContaining('body {"output":1}'),
    ]);
    expect(compare(rec(req({})), rec(req({ url: '/v2/ep1/job-done/wrk1/j1?gpu=x&isStream=true' }))).join()).toContain('url');
    expect(compare(rec(req({})), rec(req({ headers: { authorization: 'Bearer k' } }))).join()).toContain('headers');
  });

  it('masks only the traceback and type of a double-encoded error, not its layout', () => {
    const info = (type: string, tb: string, sep: [string, string]) =>
      `{"error_type"${sep[1]}"${type}"${sep[0]}"error_message"${sep[1]}"m"${sep[0]}"error_traceback"${sep[1]}"${tb}"}`;
    const body = (inner: string) => req({ text: JSON.stringify({ error: inner }).replace('":"', '": "'), body: { error: inner } });
    const py = body(info("<class 'ValueError'>", 'Traceback...', [', ', ': ']));
    expect(compare(rec(py), rec(body(info("<class 'Error'>", 'Error: m at x', [', ', ': ']))))).toEqual([]);
    expect(compare(rec(py), rec(body(info("<class 'Error'>", 'Error: m at x', [',', ':'])))).join()).toContain('error JSON layout');
  });
});
