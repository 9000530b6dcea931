// The no-bucket paths: inline base64 in production, a clear error when too large, a local folder otherwise.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { WorkerError } from '../../src/lib/errors';
import { silentLogger } from '../../src/lib/logger';
import { VideoStore, type VideoStoreOptions } from '../../src/storage/video-store';

let dir: string;
let video: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'store-'));
  video = path.join(dir, 'in.mp4');
  await writeFile(video, Buffer.from('fake mp4 bytes'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

const store = (over: Partial<VideoStoreOptions>): VideoStore =>
  new VideoStore({
    keyPrefix: '',
    presignExpiresS: 60,
    logger: silentLogger,
    outputDir: path.join(dir, 'out'),
    mode: 'production',
    ...over,
  });

describe('VideoStore without a bucket', () => {
  it('production: a small video comes back inline as a data: URI', async () => {
    const out = await store({}).put({ path: video, name: 'v.mp4', jobId: 'j1' });
    expect(out).toEqual({
      url: `data:video/mp4;base64,${Buffer.from('fake mp4 bytes').toString('base64')}`,
      content_type: 'video/mp4',
      bytes: 14,
      inline: true,
    });
  });

  it('production: a large one fails with OUTPUT_TOO_LARGE saying how to configure a bucket', async () => {
    const err = (await store({ inlineMaxBytes: 10 })
      .put({ path: video, name: 'v.mp4', jobId: 'j1' })
      .then(
        () => undefined,
        (e: unknown) => e,
      )) as WorkerError;
    expect(err).toBeInstanceOf(WorkerError);
    expect(err.code).toBe('OUTPUT_TOO_LARGE');
    expect(err.message).toMatch(/BUCKET_ENDPOINT_URL.*BUCKET_ACCESS_KEY_ID.*BUCKET_SECRET_ACCESS_KEY.*s3Config/);
    expect(err.details).toMatchObject({ bytes: 14, maxInlineBytes: 10 });
  });

  it('local: copies to outputDir/<job>/<name> and returns the path, or a URL under filesBaseUrl', async () => {
    const out = await store({ mode: 'local' }).put({ path: video, name: 'v.mp4', jobId: 'j/../2' });
    expect(out.path).toBe(path.join(dir, 'out', 'j_.._2', 'v.mp4'));
    expect(out.url).toBe(out.path);
    expect(await readFile(out.path as string, 'utf8')).toBe('fake mp4 bytes');
    expect(existsSync(video)).toBe(true);
    const served = await store({ mode: 'local', filesBaseUrl: 'http://127.0.0.1:8000/files/' }).put({
      path: video,
      name: 'v.mp4',
      jobId: 'j3',
    });
    expect(served.url).toBe('http://127.0.0.1:8000/files/j3/v.mp4');
  });
});
