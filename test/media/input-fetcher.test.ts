// Every accepted input form and every refusal, against a real loopback HTTP server and the real
// S3 test server. Loopback is private, so tests reach their server either with
// ALLOW_PRIVATE_URLS or through the `allowAddresses` allowlist (127.0.0.1 only) plus the DNS
// seam — the refusal of every other private address stays on and is what is tested.
import { createHash } from 'node:crypto';
import { readdir, readFile, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { WorkerError } from '../../src/lib/errors';
import { silentLogger } from '../../src/lib/logger';
import type { Lookup } from '../../src/media/address-guard';
import { InputFetcher, type InputFetcherOptions } from '../../src/media/input-fetcher';
import { createJobFiles, type JobFiles } from '../../src/media/job-files';
import { createS3Client } from '../../src/s3';
import { s3TestServer } from '../setup/s3-server';
import { ffprobePath, makeBadVideos, makeFixtures, pngHeader, type BadVideos, type Fixtures } from './fixtures';

let tmp: string;
let fx: Fixtures;
let bad: BadVideos;
let server: http.Server;
let base: string;
let port: number;
const hits: string[] = [];
let flaky = 0;
const held: http.ServerResponse[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'inputs-'));
  [fx, bad] = await Promise.all([makeFixtures(tmp), makeBadVideos(tmp)]);
  const png = await readFile(fx.png);
  const mp4 = await readFile(fx.mp4);
  const truncated = await readFile(bad.cutAfterHeader);
  server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    hits.push(url.pathname);
    const redirect = (to: string): void => void res.writeHead(302, { location: to }).end();
    switch (url.pathname) {
      case '/person.png':
        return void res.writeHead(200, { 'content-type': 'text/plain' }).end(png); // wrong header on purpose
      case '/dance':
        return void res.writeHead(200).end(mp4);
      case '/cut-dance':
        return void res.writeHead(200).end(truncated);
      case '/hop':
        return redirect('/person.png');
      case '/to-loopback':
        return redirect(`http://127.0.0.2:${port}/person.png`);
      case '/to-metadata-name':
        return redirect('http://metadata.test/latest/meta-data/');
      case '/to-ftp':
        return redirect('ftp://example.com/x.png');
      case '/loop':
        return redirect('/loop');
      case '/missing':
        return void res.writeHead(404).end('not found');
      case '/flaky':
        if (flaky++ < 1) return void res.writeHead(503).end();
        return void res.writeHead(200).end(png);
      case '/down':
        return void res.writeHead(502).end();
      case '/hang':
        return void held.push(res); // never answers
      case '/stall':
        res.writeHead(200, { 'content-length': String(png.length) });
        res.write(png.subarray(0, 10));
        return void held.push(res);
      case '/endless': {
        res.writeHead(200); // chunked, no length: only the streaming cap can stop it
        const chunk = Buffer.alloc(16 * 1024, 1);
        const pump = (): void => {
          while (!res.destroyed && res.write(chunk));
          if (!res.destroyed) res.once('drain', pump);
        };
        res.on('close', () => res.removeAllListeners('drain'));
        return pump();
      }
      case '/declared-big':
        res.writeHead(200, { 'content-length': String(10 * 1024 * 1024) });
        res.flushHeaders();
        return void held.push(res);
      case '/text':
        return void res.writeHead(200, { 'content-type': 'image/png' }).end('<html>not an image</html>');
      default:
        return void res.writeHead(500).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  for (const res of held) res.destroy();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await rm(tmp, { recursive: true, force: true });
});

let files: JobFiles;
beforeEach(async () => {
  hits.length = 0;
  flaky = 0;
  files = await createJobFiles(path.join(tmp, 'work'), 'job-1');
});
afterEach(async () => {
  for (const res of held.splice(0)) res.destroy();
  await files.cleanup();
});

/** media.test → our loopback server; metadata.test → the cloud metadata address; evil.test → a private one. */
const lookup: Lookup = async (host) => {
  const table: Record<string, { address: string; family: 4 | 6 }[]> = {
    'media.test': [{ address: '127.0.0.1', family: 4 }],
    'metadata.test': [{ address: '169.254.169.254', family: 4 }],
    'evil.test': [
      { address: '93.184.216.34', family: 4 },
      { address: '10.0.0.5', family: 4 },
    ],
  };
  const found = table[host];
  if (!found) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  return found;
};

function fetcher(over: Partial<InputFetcherOptions> = {}): InputFetcher {
  return new InputFetcher({
    maxBytes: 1024 * 1024,
    allowPrivateUrls: false,
    allowAddresses: ['127.0.0.1'],
    logger: silentLogger,
    lookup,
    retryDelayMs: 1,
    timeouts: { headersMs: 10_000, idleMs: 10_000, totalMs: 20_000 }, // tests of the timeouts set short ones
    limits: { imageMaxSide: 16_384, imageMaxMegapixels: 64, videoMaxSide: 4096, videoMaxSeconds: 600, videoMaxFrames: 36_000 },
    ffprobePath,
    ...over,
  });
}
const media = (p: string): string => `http://media.test:${port}${p}`;
const signal = (): AbortSignal => new AbortController().signal;

async function failure(p: Promise<unknown>): Promise<WorkerError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkerError);
  return err as WorkerError;
}

const sha = async (f: string): Promise<string> =>
  createHash('sha256')
    .update(await readFile(f))
    .digest('hex');

describe('InputFetcher: accepted forms', () => {
  it('downloads an http URL through the DNS seam, pinned to the checked address, and names the file by its bytes', async () => {
    const got = await fetcher().fetch('reference_image', media('/hop'), 'image', files, { signal: signal() });
    expect(got).toMatchObject({ field: 'reference_image', kind: 'image', mime: 'image/png', ext: '.png' });
    expect(got.path).toBe(path.join(files.dir, 'reference_image.png'));
    expect(await sha(got.path)).toBe(await sha(fx.png));
    expect(got.bytes).toBe((await readFile(fx.png)).length);
    expect(got.media).toEqual({ width: 32, height: 48 });
    expect(hits).toEqual(['/hop', '/person.png']);
  });

  it('with ALLOW_PRIVATE_URLS reaches a loopback URL directly', async () => {
    const got = await fetcher({ allowPrivateUrls: true, allowAddresses: [] }).fetch('pose_video', `${base}/dance`, 'video', files, {
      signal: signal(),
    });
    expect(got).toMatchObject({
      kind: 'video',
      mime: 'video/mp4',
      ext: '.mp4',
      media: { codec: 'h264', width: 32, height: 48, frames: 9 },
    });
  });

  it.each([
    ['data: URI', async () => `data:image/png;base64,${(await readFile(fx.png)).toString('base64')}`, 'image', 'image/png'],
    [
      'bare base64 with line breaks',
      async () => (await readFile(fx.jpg)).toString('base64').replace(/(.{76})/g, '$1\n'),
      'image',
      'image/jpeg',
    ],
    [
      'MOV as data URI',
      async () => `data:video/quicktime;base64,${(await readFile(fx.mov)).toString('base64')}`,
      'video',
      'video/quicktime',
    ],
    ['WebM as bare base64', async () => (await readFile(fx.webm)).toString('base64'), 'video', 'video/webm'],
  ] as const)('accepts %s', async (_name, make, expect_, mime) => {
    const field = expect_ === 'image' ? 'reference_image' : 'pose_video';
    const got = await fetcher().fetch(field, await make(), expect_, files, { signal: signal() });
    expect(got.mime).toBe(mime);
  });

  it("logs to the job's logger when one is given with the fetch, not the fetcher's", async () => {
    const lines = (into: string[]): typeof silentLogger => {
      const l: typeof silentLogger = { ...silentLogger, info: (m) => void into.push(m), warn: (m) => void into.push(m), child: () => l };
      return l;
    };
    const own: string[] = [];
    const job: string[] = [];
    const png = `data:image/png;base64,${(await readFile(fx.png)).toString('base64')}`;
    await fetcher({ logger: lines(own) }).fetch('reference_image', png, 'image', files, { signal: signal(), logger: lines(job) });
    expect(job).toEqual(['input fetched']);
    expect(own).toEqual([]);
  });

  it('reads s3://bucket/key with the given credentials', async () => {
    const s3 = s3TestServer();
    const creds = {
      endpointUrl: s3.endpoint,
      accessKeyId: s3.accessKeyId,
      secretAccessKey: s3.secretAccessKey,
      bucket: s3.jobBucket,
      region: s3.region,
    };
    const client = createS3Client(creds);
    await client.send(new PutObjectCommand({ Bucket: s3.jobBucket, Key: 'in/dance.mp4', Body: await readFile(fx.mp4) }));
    client.destroy();
    const got = await fetcher().fetch('pose_video', `s3://${s3.jobBucket}/in/dance.mp4`, 'video', files, {
      signal: signal(),
      bucket: creds,
    });
    expect(await sha(got.path)).toBe(await sha(fx.mp4));

    const missing = await failure(
      fetcher().fetch('pose_video', `s3://${s3.jobBucket}/in/nope.mp4`, 'video', files, { signal: signal(), bucket: creds }),
    );
    expect(missing.code).toBe('INPUT_FETCH_FAILED');
    expect(missing.details).toMatchObject({ field: 'pose_video', status: 404 });
    expect(missing.message).not.toContain(s3.secretAccessKey);

    const wrongSecret = await failure(
      fetcher().fetch('pose_video', `s3://${s3.jobBucket}/in/dance.mp4`, 'video', files, {
        signal: signal(),
        bucket: { ...creds, secretAccessKey: 'x'.repeat(40) },
      }),
    );
    expect(wrongSecret.details).toMatchObject({ status: 403 });
  });
});

describe('InputFetcher: refusals', () => {
  it.each([
    ['a loopback literal (without the allowlist)', () => `${base}/person.png`],
    ['another loopback address', () => `http://127.0.0.2:${port}/person.png`],
    ['IPv6 loopback', () => `http://[::1]:${port}/person.png`],
    ['IPv4-mapped IPv6 loopback', () => `http://[::ffff:127.0.0.1]:${port}/person.png`],
    ['a decimal-encoded loopback (without the allowlist)', () => `http://2130706433:${port}/person.png`],
    ['the metadata address', () => 'http://169.254.169.254/latest/meta-data/'],
    ['a name resolving to the metadata address', () => 'http://metadata.test/latest/'],
    ['a name with one private address among public ones', () => 'https://evil.test/x.png'],
    ['a redirect to another loopback address', () => media('/to-loopback')],
    ['a redirect to a name resolving to the metadata address', () => media('/to-metadata-name')],
  ])('refuses %s before connecting', async (name, url) => {
    const allowAddresses = name.includes('without the allowlist') ? [] : ['127.0.0.1'];
    const err = await failure(fetcher({ allowAddresses }).fetch('reference_image', url(), 'image', files, { signal: signal() }));
    expect(err.code).toBe('INVALID_INPUT');
    expect(err.details).toMatchObject({ field: 'reference_image', reason: 'private_address' });
    expect(err.message).toMatch(/^reference_image: .*ALLOW_PRIVATE_URLS/);
    expect(hits.filter((h) => h === '/person.png')).toEqual([]);
  });

  it('refuses a file too large while streaming (no Content-Length) and leaves no partial file', async () => {
    const err = await failure(fetcher({ maxBytes: 200_000 }).fetch('pose_video', media('/endless'), 'video', files, { signal: signal() }));
    expect(err.code).toBe('INVALID_INPUT');
    expect(err.details).toMatchObject({ field: 'pose_video', maxBytes: 200_000 });
    expect(await readdir(files.dir)).toEqual([]);
  });

  it('refuses a declared Content-Length over the cap without reading the body', async () => {
    const err = await failure(fetcher().fetch('pose_video', media('/declared-big'), 'video', files, { signal: signal() }));
    expect(err.code).toBe('INVALID_INPUT');
    expect(err.details).toMatchObject({ bytes: 10 * 1024 * 1024 });
  });

  it('refuses the wrong kind and non-media bytes whatever the Content-Type says', async () => {
    const wrongKind = await failure(fetcher().fetch('pose_video', media('/person.png'), 'video', files, { signal: signal() }));
    expect(wrongKind.code).toBe('INVALID_INPUT');
    expect(wrongKind.message).toBe('pose_video: must be a video (MP4, MOV or WebM), got a PNG image');
    const html = await failure(fetcher().fetch('reference_image', media('/text'), 'image', files, { signal: signal() }));
    expect(html.message).toMatch(/^reference_image: must be an image .*unrecognised/);
    expect(await readdir(files.dir)).toEqual([]);
  });

  it('refuses a PNG whose header claims 100000×100000 before it goes anywhere, leaving no file', async () => {
    const huge = `data:image/png;base64,${pngHeader(100_000, 100_000).toString('base64')}`;
    const err = await failure(fetcher().fetch('reference_image', huge, 'image', files, { signal: signal() }));
    expect(err.code).toBe('INVALID_INPUT');
    expect(err.message).toMatch(
      /^reference_image: is 100000×100000 pixels, over the limit of 16384 pixels per side \(MAX_INPUT_IMAGE_SIDE\)/,
    );
    expect(await readdir(files.dir)).toEqual([]);
  });

  it('refuses a truncated MP4 (its header intact) naming the field, leaving no file', async () => {
    const err = await failure(fetcher().fetch('pose_video', media('/cut-dance'), 'video', files, { signal: signal() }));
    expect(err.code).toBe('INVALID_INPUT');
    expect(err.details).toMatchObject({ field: 'pose_video', reason: 'truncated' });
    expect(await readdir(files.dir)).toEqual([]);
    expect(hits).toEqual(['/cut-dance']); // a refusal of the content is not retried
  });

  it('refuses a video over the configured length', async () => {
    const err = await failure(
      fetcher({
        limits: { imageMaxSide: 16_384, imageMaxMegapixels: 64, videoMaxSide: 4096, videoMaxSeconds: 1, videoMaxFrames: 36_000 },
      }).fetch('pose_video', media('/dance'), 'video', files, { signal: signal() }),
    );
    expect(err.details).toMatchObject({ field: 'pose_video', reason: 'video_duration', limit: 1 });
  });

  it('reports 404 with its status and does not retry it', async () => {
    const err = await failure(fetcher().fetch('reference_image', media('/missing'), 'image', files, { signal: signal() }));
    expect(err.code).toBe('INPUT_FETCH_FAILED');
    expect(err.details).toMatchObject({ status: 404 });
    expect(err.message).toContain('HTTP 404');
    expect(hits).toEqual(['/missing']);
  });

  it('retries a 5xx and succeeds; gives up after the attempts with the status', async () => {
    await fetcher().fetch('reference_image', media('/flaky'), 'image', files, { signal: signal() });
    expect(hits).toEqual(['/flaky', '/flaky']);
    hits.length = 0;
    const err = await failure(fetcher({ attempts: 2 }).fetch('reference_image', media('/down'), 'image', files, { signal: signal() }));
    expect(err.details).toMatchObject({ status: 502, attempts: 2 });
    expect(err.message).toMatch(/answered HTTP 502; gave up after 2 attempts over [\d.]+ s$/);
    expect(hits).toEqual(['/down', '/down']);
  });

  it('times out waiting for headers and for a stalled body', async () => {
    const quick = fetcher({ attempts: 1, timeouts: { headersMs: 150, idleMs: 150, totalMs: 5_000 } });
    const headers = await failure(quick.fetch('reference_image', media('/hang'), 'image', files, { signal: signal() }));
    expect(headers.code).toBe('INPUT_FETCH_FAILED');
    expect(headers.details).toMatchObject({ reason: 'timeout' });
    expect(headers.message).toBe(`reference_image: http://media.test:${port}/hang sent no response headers within 0.2 s`);
    const body = await failure(quick.fetch('reference_image', media('/stall'), 'image', files, { signal: signal() }));
    expect(body.details).toMatchObject({ reason: 'timeout' });
    expect(body.message).toBe(`reference_image: http://media.test:${port}/stall stalled: no data for 0.2 s`);
  });

  it("says how many attempts a stalled download had and how long they took in all, not one attempt's time", async () => {
    const stalls = fetcher({ attempts: 3, retryDelayMs: 1, timeouts: { headersMs: 5_000, idleMs: 150, totalMs: 5_000 } });
    const err = await failure(stalls.fetch('pose_video', media('/stall'), 'video', files, { signal: signal() }));
    expect(err.code).toBe('INPUT_FETCH_FAILED');
    expect(err.message).toMatch(
      new RegExp(`^pose_video: http://media.test:${port}/stall stalled: no data for 0.2 s; gave up after 3 attempts over ([\\d.]+) s$`),
    );
    expect(err.details).toMatchObject({ field: 'pose_video', reason: 'timeout', attempts: 3 });
    // Three stalls of 150 ms each cannot take less than 450 ms in all.
    expect(err.details.elapsedMs).toBeGreaterThanOrEqual(450);
    expect(hits).toEqual(['/stall', '/stall', '/stall']);
  });

  it('names the network reason when nothing listens', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const err = await failure(
      fetcher({ attempts: 1 }).fetch('reference_image', `http://media.test:${closedPort}/x`, 'image', files, { signal: signal() }),
    );
    expect(err.code).toBe('INPUT_FETCH_FAILED');
    expect(err.message).toContain('ECONNREFUSED');
  });

  it('bounds redirects and refuses non-http redirect targets', async () => {
    const loop = await failure(fetcher({ maxRedirects: 3 }).fetch('reference_image', media('/loop'), 'image', files, { signal: signal() }));
    expect(loop.details).toMatchObject({ reason: 'too_many_redirects' });
    expect(hits).toHaveLength(4);
    const ftp = await failure(fetcher().fetch('reference_image', media('/to-ftp'), 'image', files, { signal: signal() }));
    expect(ftp.code).toBe('INVALID_INPUT');
  });

  it.each([
    ['bad base64', 'this is not base64!', 'base64'],
    ['a base64 data: URI with garbage', 'data:image/png;base64,@@@@', 'base64'],
    ['a non-base64 data: URI', 'data:image/png,hello', 'data_uri'],
    ['an unsupported scheme', 'file:///etc/passwd', 'scheme'],
    ['an empty string', '   ', 'empty'],
    ['s3:// without credentials', 's3://bucket/key.png', 'no_credentials'],
    ['a malformed s3:// URI', 's3://bucket-only', 's3_uri'],
  ])('refuses %s as INVALID_INPUT', async (_name, source, reason) => {
    const err = await failure(fetcher().fetch('reference_image', source, 'image', files, { signal: signal() }));
    expect(err.code).toBe('INVALID_INPUT');
    expect(err.details).toMatchObject({ field: 'reference_image', reason });
  });

  it('names every accepted form when it refuses a scheme', async () => {
    const err = await failure(fetcher().fetch('pose_video', 'ftp://host/dance.mp4', 'video', files, { signal: signal() }));
    expect(err.message).toBe('pose_video: unsupported URL scheme "ftp:"; use https://, http://, s3:// or a data: URI');
  });

  it('refuses base64 over the cap before decoding it', async () => {
    const err = await failure(
      fetcher({ maxBytes: 100 }).fetch('reference_image', Buffer.alloc(300).toString('base64'), 'image', files, { signal: signal() }),
    );
    expect(err.details).toMatchObject({ maxBytes: 100, bytes: 300 });
  });

  it('never puts URL credentials or presigned signatures into errors', async () => {
    const err = await failure(
      fetcher().fetch(
        'reference_image',
        `http://user:hunter2@media.test:${port}/missing?X-Amz-Signature=topsecret&token=t0k`,
        'image',
        files,
        { signal: signal() },
      ),
    );
    expect(err.message).not.toMatch(/hunter2|topsecret|t0k|user/);
  });

  it('stops at once with the job signal’s reason when the job is cancelled', async () => {
    const ctl = new AbortController();
    const reason = new WorkerError('CANCELLED', 'job cancelled');
    const pending = fetcher().fetch('reference_image', media('/hang'), 'image', files, { signal: ctl.signal });
    setTimeout(() => ctl.abort(reason), 50);
    await expect(pending).rejects.toBe(reason);
  });
});
