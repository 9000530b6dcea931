// Against the real S3 server the global setup started (versitygw, which verifies SigV4):
// multipart round trip byte-exact, presigned URL fetchable and a tampered one refused,
// content type and disposition stored, a job's own bucket, public URLs.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { WorkerError } from '../../src/lib/errors';
import { silentLogger } from '../../src/lib/logger';
import { bucketFromS3Config, type BucketCredentials } from '../../src/s3';
import { createS3Client } from '../../src/s3';
import { VideoStore, type VideoStoreOptions } from '../../src/storage/video-store';
import { s3TestServer, type S3TestServer } from '../setup/s3-server';

const PART = 5 * 1024 * 1024;
let s3: S3TestServer;
let worker: BucketCredentials;
let dir: string;
let big: string;
let bigSha: string;

beforeAll(async () => {
  s3 = s3TestServer();
  worker = {
    endpointUrl: s3.endpoint,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    bucket: s3.bucket,
    region: s3.region,
  };
  dir = await mkdtemp(path.join(os.tmpdir(), 's3-int-'));
  big = path.join(dir, 'big.mp4');
  // 2.5 parts of random bytes: three UploadParts, the last one short.
  const hash = createHash('sha256');
  const out = createWriteStream(big);
  for (let i = 0; i < 5; i++) {
    const chunk = randomBytes(PART / 2);
    hash.update(chunk);
    out.write(chunk);
  }
  await new Promise((r) => out.end(r));
  bigSha = hash.digest('hex');
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

const store = (over: Partial<VideoStoreOptions> = {}): VideoStore =>
  new VideoStore({
    bucket: worker,
    keyPrefix: 'it/',
    presignExpiresS: 600,
    logger: silentLogger,
    outputDir: dir,
    mode: 'production',
    upload: { partSize: PART, multipartThreshold: PART, retryBudgetMs: 0 },
    ...over,
  });

const sha = (b: ArrayBuffer | Buffer): string =>
  createHash('sha256')
    .update(Buffer.from(b as ArrayBuffer))
    .digest('hex');

describe('VideoStore against a real S3 server', () => {
  it('multipart upload round-trips byte-exact through its presigned URL, with type and disposition stored', async () => {
    const out = await store().put({ path: big, name: 'steadydancer_00001.mp4', jobId: 'job-mp' });
    expect(out).toMatchObject({
      bucket: s3.bucket,
      key: 'it/job-mp/steadydancer_00001.mp4',
      bytes: 5 * (PART / 2),
      content_type: 'video/mp4',
    });
    const res = await fetch(out.url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('video/mp4');
    expect(sha(await res.arrayBuffer())).toBe(bigSha);

    const client = createS3Client(worker);
    const head = await client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: out.key }));
    client.destroy();
    expect(head.ContentType).toBe('video/mp4');
    expect(head.ContentDisposition).toBe('inline; filename="steadydancer_00001.mp4"');
    expect(head.ETag).toMatch(/-3"$/); // really multipart: three parts
  });

  it('refuses a tampered presigned URL and a wrong secret (signatures are verified)', async () => {
    const out = await store().put({ path: path.join(dir, 'big.mp4'), name: 'x.mp4', jobId: 'job-sig' });
    const url = new URL(out.url);
    const sig = url.searchParams.get('X-Amz-Signature') as string;
    url.searchParams.set('X-Amz-Signature', (sig[0] === 'a' ? 'b' : 'a') + sig.slice(1));
    const tampered = await fetch(url);
    await tampered.arrayBuffer();
    expect(tampered.status).toBe(403);
    const otherKey = new URL(out.url);
    otherKey.pathname = otherKey.pathname.replace('x.mp4', 'y.mp4');
    expect((await fetch(otherKey)).status).toBe(403);

    const err = await store({ bucket: { ...worker, secretAccessKey: 'wrong'.repeat(8) } })
      .put({ path: big, name: 'x.mp4', jobId: 'job-bad' })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(WorkerError);
    expect((err as WorkerError).code).toBe('UPLOAD_FAILED');
    expect((err as WorkerError).details).toMatchObject({ status: 403 });
  });

  it('a job’s s3Config overrides the worker bucket (and gets a presigned URL, not the worker’s public URL)', async () => {
    const small = path.join(dir, 'small.mp4');
    await writeFile(small, 'tiny video');
    const job = bucketFromS3Config(
      { accessId: s3.accessKeyId, accessSecret: s3.secretAccessKey, bucketName: s3.jobBucket, endpointUrl: s3.endpoint },
      s3.region,
    );
    const out = await store({ publicUrl: 'https://cdn.example.com/videos/' }).put({
      path: small,
      name: 'o.mp4',
      jobId: 'job-ovr',
      bucket: job,
    });
    expect(out.bucket).toBe(s3.jobBucket);
    expect(await (await fetch(out.url)).text()).toBe('tiny video');

    const client = createS3Client(worker);
    const inWorker = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: 'it/job-ovr/' }));
    client.destroy();
    expect(inWorker.KeyCount ?? 0).toBe(0);
  });

  it('with BUCKET_PUBLIC_URL returns public base + key', async () => {
    const small = path.join(dir, 'small2.mp4');
    await writeFile(small, 'v');
    const out = await store({ publicUrl: 'https://cdn.example.com/videos/' }).put({ path: small, name: 'a b.mp4', jobId: 'job-pub' });
    expect(out.url).toBe('https://cdn.example.com/videos/it/job-pub/a_b.mp4');
  });

  it('reuses one client for the worker bucket across jobs, a fresh one per job bucket; per-job prefix and logger', async () => {
    const small = path.join(dir, 'small3.mp4');
    await writeFile(small, 'reused');
    const made: { bucket: string; destroyed: boolean }[] = [];
    const s3Factory = (creds: BucketCredentials) => {
      const client = createS3Client(creds);
      const entry = { bucket: creds.bucket, destroyed: false };
      made.push(entry);
      const destroy = client.destroy.bind(client);
      client.destroy = () => {
        entry.destroyed = true;
        destroy();
      };
      return client;
    };
    const shared = store({ s3: s3Factory });
    const lines: string[] = [];
    const jobLogger = { ...silentLogger, info: (m: string) => void lines.push(m), child: () => jobLogger };
    const a = await shared.put({ path: small, name: 'a.mp4', jobId: 'job-r1', keyPrefix: 'dances/', logger: jobLogger });
    await shared.put({ path: small, name: 'b.mp4', jobId: 'job-r2' });
    expect(made).toEqual([{ bucket: s3.bucket, destroyed: false }]);
    expect(a.key).toBe('dances/job-r1/a.mp4');
    expect(lines).toContain('video uploaded');
    expect(await (await fetch(a.url)).text()).toBe('reused');

    const job = bucketFromS3Config(
      { accessId: s3.accessKeyId, accessSecret: s3.secretAccessKey, bucketName: s3.jobBucket, endpointUrl: s3.endpoint },
      s3.region,
    );
    await shared.put({ path: small, name: 'c.mp4', jobId: 'job-r3', bucket: job });
    expect(made).toEqual([
      { bucket: s3.bucket, destroyed: false },
      { bucket: s3.jobBucket, destroyed: true },
    ]);
    shared.close();
    expect(made[0]?.destroyed).toBe(true);
  });
});
