// Request-level checks of what the uploader sends (msw intercepts the SDK's node:http):
// no checksum headers or aws-chunked bodies (R2 trap), content type/disposition, retries on
// 5xx, no retry on 403, and a final failure that is UPLOAD_FAILED, never a URL.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { http, HttpResponse } from 'msw';
import { setupServer } from 'msw/node';
import { WorkerError } from '../../src/lib/errors';
import { silentLogger } from '../../src/lib/logger';
import { VideoStore, type VideoStoreOptions } from '../../src/storage/video-store';

const ENDPOINT = 'https://s3.test';
const SECRET = 'sEcReTkEy1234567890';

interface Seen {
  method: string;
  url: URL;
  headers: Record<string, string>;
  bytes: number;
}
const seen: Seen[] = [];
let failNext: { status: number; times: number } = { status: 0, times: 0 };

const server = setupServer(
  http.all(`${ENDPOINT}/*`, async ({ request }) => {
    const url = new URL(request.url);
    const body = request.method === 'PUT' || request.method === 'POST' ? await request.arrayBuffer() : new ArrayBuffer(0);
    seen.push({ method: request.method, url, headers: Object.fromEntries(request.headers), bytes: body.byteLength });
    if (failNext.times > 0) {
      failNext.times--;
      const code = failNext.status === 403 ? 'AccessDenied' : 'InternalError';
      return new HttpResponse(`<Error><Code>${code}</Code><Message>nope</Message></Error>`, {
        status: failNext.status,
        headers: { 'content-type': 'application/xml' },
      });
    }
    const xml = (s: string): Response => new HttpResponse(s, { headers: { 'content-type': 'application/xml' } });
    if (request.method === 'POST' && url.searchParams.has('uploads')) {
      return xml('<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>up-1</UploadId></InitiateMultipartUploadResult>');
    }
    if (request.method === 'POST' && url.searchParams.has('uploadId')) {
      return xml('<CompleteMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><ETag>"e"</ETag></CompleteMultipartUploadResult>');
    }
    if (request.method === 'DELETE') return new HttpResponse(null, { status: 204 });
    return new HttpResponse(null, { status: 200, headers: { etag: '"etag"' } });
  }),
);

let dir: string;
let small: string;
let large: string;
beforeAll(async () => {
  server.listen({ onUnhandledFrame: 'error' });
  dir = await mkdtemp(path.join(os.tmpdir(), 'upload-req-'));
  small = path.join(dir, 'small.mp4');
  large = path.join(dir, 'large.mp4');
  await writeFile(small, Buffer.alloc(1000, 7));
  await writeFile(large, Buffer.alloc(5 * 1024 * 1024 + 1000, 9)); // 2 parts: 5 MiB + 1000 bytes
});
afterEach(() => {
  seen.length = 0;
  failNext = { status: 0, times: 0 };
});
afterAll(async () => {
  server.close();
  await rm(dir, { recursive: true, force: true });
});

function store(over: Partial<VideoStoreOptions> = {}): VideoStore {
  return new VideoStore({
    bucket: { endpointUrl: ENDPOINT, accessKeyId: 'AKIDTEST', secretAccessKey: SECRET, bucket: 'b', region: 'auto' },
    keyPrefix: 'dances/',
    presignExpiresS: 3600,
    logger: silentLogger,
    outputDir: dir,
    mode: 'production',
    upload: { partSize: 5 * 1024 * 1024, multipartThreshold: 5 * 1024 * 1024, minDelayMs: 1, maxDelayMs: 2 },
    ...over,
  });
}

const checksumHeaders = (s: Seen): string[] =>
  Object.entries(s.headers)
    .filter(
      ([k, v]) =>
        k.startsWith('x-amz-checksum') ||
        k === 'x-amz-sdk-checksum-algorithm' ||
        k === 'x-amz-trailer' ||
        /aws-chunked/.test(v) ||
        /STREAMING/.test(v),
    )
    .map(([k, v]) => `${k}: ${v}`);

describe('upload requests', () => {
  it('PutObject (small file): no checksum, no aws-chunked, video/mp4 and inline disposition, key = prefix + job + name', async () => {
    const out = await store().put({ path: small, name: 'steadydancer_00001.mp4', jobId: 'job-1' });
    const puts = seen.filter((s) => s.method === 'PUT');
    expect(puts).toHaveLength(1);
    const put = puts[0] as Seen;
    expect(put.url.pathname).toBe('/b/dances/job-1/steadydancer_00001.mp4');
    expect(checksumHeaders(put)).toEqual([]);
    expect(put.headers['content-type']).toBe('video/mp4');
    expect(put.headers['content-disposition']).toBe('inline; filename="steadydancer_00001.mp4"');
    expect(put.bytes).toBe(1000);
    expect(out).toMatchObject({ bucket: 'b', key: 'dances/job-1/steadydancer_00001.mp4', bytes: 1000, content_type: 'video/mp4' });
    expect(new URL(out.url).searchParams.get('X-Amz-Expires')).toBe('3600');
  });

  it('multipart: CreateMultipartUpload and every UploadPart free of checksums, parts of equal size', async () => {
    await store().put({ path: large, name: 'big.mp4', jobId: 'job-2' });
    const create = seen.find((s) => s.method === 'POST' && s.url.searchParams.has('uploads')) as Seen;
    const parts = seen.filter((s) => s.method === 'PUT' && s.url.searchParams.has('partNumber'));
    expect(create.headers['content-type']).toBe('video/mp4');
    expect(create.headers['content-disposition']).toBe('inline; filename="big.mp4"');
    expect(checksumHeaders(create)).toEqual([]);
    expect(parts.map((p) => p.bytes).sort((a, b) => b - a)).toEqual([5 * 1024 * 1024, 1000]);
    for (const p of parts) expect(checksumHeaders(p)).toEqual([]);
  });

  it('a file below the multipart threshold goes as one streaming PutObject, free of checksums', async () => {
    await store({ upload: { multipartThreshold: 64 * 1024 * 1024 } }).put({ path: large, name: 'mid.mp4', jobId: 'job-3' });
    expect(seen.map((s) => `${s.method} ${s.url.search}`)).toEqual(['PUT ?x-id=PutObject']);
    const put = seen[0] as Seen;
    expect(put.bytes).toBe(5 * 1024 * 1024 + 1000);
    expect(checksumHeaders(put)).toEqual([]);
    expect(put.headers['content-type']).toBe('video/mp4');
  });

  it('retries a 503 and then succeeds', async () => {
    failNext = { status: 503, times: 2 };
    const out = await store().put({ path: small, name: 'a.mp4', jobId: 'j' });
    expect(seen.filter((s) => s.method === 'PUT')).toHaveLength(3);
    expect(out.key).toBe('dances/j/a.mp4');
  });

  it('a 403 is not retried and fails as UPLOAD_FAILED without secrets and without a URL', async () => {
    failNext = { status: 403, times: 10 };
    const err = await store()
      .put({ path: small, name: 'a.mp4', jobId: 'j' })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(WorkerError);
    expect((err as WorkerError).code).toBe('UPLOAD_FAILED');
    expect((err as WorkerError).message).toMatch(/HTTP 403 AccessDenied.*credentials/);
    expect(JSON.stringify({ m: (err as WorkerError).message, d: (err as WorkerError).details })).not.toMatch(
      new RegExp(`${SECRET}|X-Amz-Signature|https://`),
    );
    expect(seen.filter((s) => s.method === 'PUT')).toHaveLength(1);
  });

  it('persistent 5xx: gives up when the retry budget is spent, with UPLOAD_FAILED', async () => {
    failNext = { status: 500, times: 100 };
    let now = 0;
    const err = (await store({
      upload: { retryBudgetMs: 3_000, minDelayMs: 1_000, maxDelayMs: 1_000 },
      retryClock: { now: () => now, sleep: async (ms) => void (now += ms), random: () => 1 },
    })
      .put({ path: small, name: 'a.mp4', jobId: 'j' })
      .then(
        () => undefined,
        (e: unknown) => e,
      )) as WorkerError;
    expect(err.code).toBe('UPLOAD_FAILED');
    expect(err.details).toMatchObject({ status: 500 });
    expect(seen.filter((s) => s.method === 'PUT')).toHaveLength(4);
  });
});
