// Uploads through S3 faults, against the real S3 server behind a fault-injecting proxy: an outage
// (5xx) is survived and the video arrives intact, a multipart upload resumes with only the missing
// parts, the retry budget ends a long outage, an abort settles every request, and a server that
// takes connections but never answers is cut by the per-request timeouts.
import { createHash, randomBytes } from 'node:crypto';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { isWorkerError, WorkerError } from '../../src/lib/errors';
import { silentLogger, type Logger } from '../../src/lib/logger';
import { createS3Client, type BucketCredentials } from '../../src/s3';
import { VideoStore, type VideoStoreOptions } from '../../src/storage/video-store';
import { s3TestServer, type S3TestServer } from '../setup/s3-server';
import { startFaultProxy, type FaultProxy } from '../support/s3-fault-proxy';

const PART = 5 * 1024 * 1024;
let s3: S3TestServer;
let proxy: FaultProxy;
let dir: string;
let small: { path: string; sha: string };
let big: { path: string; sha: string };

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function writeRandom(name: string, bytes: number): Promise<{ path: string; sha: string }> {
  const data = randomBytes(bytes);
  const file = path.join(dir, name);
  await writeFile(file, data);
  return { path: file, sha: sha(data) };
}

beforeAll(async () => {
  s3 = s3TestServer();
  proxy = await startFaultProxy(s3.endpoint);
  dir = await mkdtemp(path.join(os.tmpdir(), 'upload-faults-'));
  small = await writeRandom('small.mp4', 300 * 1024);
  big = await writeRandom('big.mp4', 4 * PART + 12345); // five parts, the last one short
});
afterEach(() => {
  proxy.setRule(() => 'pass');
  proxy.seen.length = 0;
});
afterAll(async () => {
  await proxy.close();
  await rm(dir, { recursive: true, force: true });
});

const viaProxy = (): BucketCredentials => ({
  endpointUrl: proxy.endpoint,
  accessKeyId: s3.accessKeyId,
  secretAccessKey: s3.secretAccessKey,
  bucket: s3.bucket,
  region: s3.region,
});

const store = (over: Partial<VideoStoreOptions> = {}): VideoStore =>
  new VideoStore({
    bucket: viaProxy(),
    keyPrefix: 'faults/',
    presignExpiresS: 600,
    logger: silentLogger,
    outputDir: dir,
    mode: 'production',
    ...over,
    upload: { partSize: PART, multipartThreshold: PART, queueSize: 2, minDelayMs: 1, maxDelayMs: 5, ...over.upload },
  });

/** The stored object's sha256, read from the server directly (not through the proxy). */
async function storedSha(key: string): Promise<string> {
  const client = createS3Client({ ...viaProxy(), endpointUrl: s3.endpoint });
  try {
    const res = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
    return sha(Buffer.from(await (res.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()));
  } finally {
    client.destroy();
  }
}

const isPart = (url: string): boolean => /[?&]partNumber=/.test(url);
const partNumber = (url: string): number => Number(/[?&]partNumber=(\d+)/.exec(url)?.[1]);

function warnings(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger: Logger = { ...silentLogger, warn: (message, fields) => void lines.push({ message, ...fields }), child: () => logger };
  return { logger, lines };
}

describe('uploads through S3 faults (real S3 server behind a fault proxy)', () => {
  it('survives an outage of 503s and 500s: the video arrives intact', async () => {
    proxy.setRule(({ n }) => (n <= 3 ? { status: 503 } : n <= 5 ? { status: 500 } : 'pass'));
    const { logger, lines } = warnings();
    const out = await store().put({ path: small.path, name: 'v.mp4', jobId: 'outage', logger });
    expect(await storedSha(out.key as string)).toBe(small.sha);
    expect(proxy.seen.map((r) => r.status)).toEqual([503, 503, 503, 500, 500, 200]);
    expect(lines.filter((l) => l.message === 'upload attempt failed, retrying')).toHaveLength(5);
    expect(lines[0]).toMatchObject({ reason: 'HTTP 503 SlowDown', attempt: 1 });
  });

  it('resumes a multipart upload: after the outage only the missing parts are sent, to the same upload', async () => {
    let partsPassed = 0;
    let failures = 0;
    proxy.setRule(({ url }) => {
      if (!isPart(url)) return 'pass';
      if (partsPassed < 2) return (partsPassed++, 'pass');
      if (failures < 6) return (failures++, { status: 500 });
      return 'pass';
    });
    const { logger, lines } = warnings();
    const out = await store().put({ path: big.path, name: 'big.mp4', jobId: 'resume', logger });
    expect(await storedSha(out.key as string)).toBe(big.sha);

    const creates = proxy.seen.filter((r) => r.method === 'POST' && /[?&]uploads\b/.test(r.url));
    expect(creates).toHaveLength(1);
    const uploadIds = new Set(proxy.seen.filter((r) => isPart(r.url)).map((r) => /uploadId=([^&]+)/.exec(r.url)?.[1]));
    expect(uploadIds.size).toBe(1);
    // Parts 1 and 2 were stored before the outage and never sent again; every part stored once.
    const sent = (n: number): number => proxy.seen.filter((r) => isPart(r.url) && partNumber(r.url) === n).length;
    expect([sent(1), sent(2)]).toEqual([1, 1]);
    const stored = proxy.seen.filter((r) => isPart(r.url) && r.status === 200).map((r) => partNumber(r.url));
    expect(stored.sort()).toEqual([1, 2, 3, 4, 5]);
    expect(lines[0]).toMatchObject({ partsStored: 2, parts: 5 });
  });

  it('gives up when the outage outlasts the retry budget, with UPLOAD_FAILED saying how long it tried', async () => {
    proxy.setRule(() => ({ status: 503 }));
    let now = 0;
    const s = store({
      upload: { retryBudgetMs: 60_000, minDelayMs: 500, maxDelayMs: 10_000 },
      retryClock: { now: () => now, sleep: async (ms) => void (now += ms), random: () => 1 },
    });
    const err = await s.put({ path: small.path, name: 'v.mp4', jobId: 'budget' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isWorkerError(err, 'UPLOAD_FAILED')).toBe(true);
    const attempts = proxy.seen.length;
    expect(attempts).toBeGreaterThan(5);
    expect((err as WorkerError).message).toContain(`HTTP 503 SlowDown (gave up after ${attempts} attempts in 60 s)`);
    expect(now).toBe(60_000);
  });

  it('an abort during an outage ends at once with its reason, after every request settled and the multipart upload was aborted', async () => {
    proxy.setRule(({ url }) => (isPart(url) ? { status: 503 } : 'pass'));
    const controller = new AbortController();
    const reason = new WorkerError('CANCELLED', 'cancelled');
    const logger: Logger = { ...silentLogger, warn: () => controller.abort(reason), child: () => logger };
    const err = await store({ upload: { minDelayMs: 60_000, maxDelayMs: 60_000 } })
      .put({ path: big.path, name: 'big.mp4', jobId: 'abort', logger }, controller.signal)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBe(reason);
    expect(proxy.inFlight()).toBe(0);
    expect(proxy.seen.some((r) => r.method === 'DELETE' && /uploadId=/.test(r.url))).toBe(true);
  });

  it('an abort while parts hang in flight cuts them: nothing is left sending when the put settles', async () => {
    const controller = new AbortController();
    const reason = new WorkerError('TIMEOUT', 'job deadline');
    let hanging = 0;
    proxy.setRule(({ url }) => {
      if (!isPart(url)) return 'pass';
      if (++hanging === 2) setImmediate(() => controller.abort(reason)); // both lanes are stuck now
      return 'hang';
    });
    const err = await store()
      .put({ path: big.path, name: 'big.mp4', jobId: 'abort-hang' }, controller.signal)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBe(reason);
    await until(() => proxy.inFlight() === 0); // the proxy sees both sockets closed
    expect(proxy.seen.filter((r) => isPart(r.url))).toHaveLength(2);
  });
});

/** Resolves once `done()` holds, checking after each turn of the event loop (the test's timeout bounds it). */
async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((r) => setImmediate(r));
}

describe('a hung S3 (takes the connection, never answers)', () => {
  let blackHole: net.Server;
  let endpoint: string;
  let accepted = 0;
  const held: net.Socket[] = [];

  beforeAll(async () => {
    blackHole = net.createServer((socket) => {
      accepted++;
      socket.pause(); // read nothing, answer nothing
      held.push(socket);
    });
    await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(blackHole.address() as net.AddressInfo).port}`;
  });
  afterEach(() => {
    accepted = 0;
  });
  afterAll(async () => {
    for (const s of held) s.destroy();
    await new Promise<void>((resolve) => blackHole.close(() => resolve()));
  });

  const hungStore = (): VideoStore =>
    store({
      bucket: { ...viaProxy(), endpointUrl: endpoint },
      // Injected timeouts keep the test short; the defaults are 10 s to connect and 30 s idle.
      s3: (creds) => createS3Client(creds, { timeouts: { connectMs: 1_000, idleMs: 150 } }),
      upload: { maxTimeoutsInARow: 3 },
    });

  it('fails as UPLOAD_FAILED after three attempts that each timed out', async () => {
    const err = await hungStore()
      .put({ path: small.path, name: 'v.mp4', jobId: 'hung' })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(isWorkerError(err, 'UPLOAD_FAILED')).toBe(true);
    expect((err as WorkerError).message).toContain('TimeoutError (gave up after 3 attempts');
    expect(accepted).toBe(3);
  });

  it("says nothing of the failure when the endpoint is the job's own (no port-scan oracle)", async () => {
    const jobBucket = { ...viaProxy(), endpointUrl: endpoint, bucket: 'theirs' };
    const err = (await hungStore()
      .put({ path: small.path, name: 'v.mp4', jobId: 'hung-job', bucket: jobBucket })
      .then(
        () => undefined,
        (e: unknown) => e,
      )) as WorkerError;
    expect(err.code).toBe('UPLOAD_FAILED');
    expect(err.message).toMatch(/^Could not upload faults\/hung-job\/v\.mp4 to the job's bucket theirs — check s3Config/);
    expect(`${err.message} ${JSON.stringify(err.details)}`).not.toMatch(/Timeout|ETIMEDOUT|ECONN|HTTP|127\.0\.0\.1|status/i);
  });
});
