// The guard on a job's own bucket endpoint (s3Config.endpointUrl): the operator's allow-list,
// private addresses refused (IP literals and resolved names), one message whatever is behind
// the refusal, and the connect-time lookup that closes the DNS-rebinding window.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { isWorkerError, WorkerError } from '../../src/lib/errors';
import { silentLogger } from '../../src/lib/logger';
import type { Lookup, ResolvedAddress } from '../../src/media/address-guard';
import { EndpointGuard, parseAllowedEndpoint, type EndpointPolicy } from '../../src/s3';
import { VideoStore } from '../../src/storage/video-store';

const PUBLIC: ResolvedAddress[] = [{ address: '93.184.216.34', family: 4 }];
const s3Config = (endpointUrl: string) => ({ accessId: 'AKID', accessSecret: 'sEcReT', bucketName: 'b', endpointUrl });

function dns(answers: Record<string, ResolvedAddress[] | string>): Lookup & { calls: string[] } {
  const calls: string[] = [];
  const lookup = async (host: string): Promise<ResolvedAddress[]> => {
    calls.push(host);
    const a = answers[host];
    if (a === undefined || typeof a === 'string')
      throw Object.assign(new Error(`getaddrinfo ${a ?? 'ENOTFOUND'} ${host}`), { code: a ?? 'ENOTFOUND' });
    return a;
  };
  return Object.assign(lookup, { calls });
}

const guard = (policy: Partial<EndpointPolicy>): EndpointGuard =>
  new EndpointGuard({ allowPrivate: false, allowedEndpoints: [], lookup: dns({}), ...policy });

async function refusal(g: EndpointGuard, endpointUrl: string): Promise<WorkerError> {
  const err = await g.jobBucket(s3Config(endpointUrl), 'auto').then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isWorkerError(err, 'INVALID_INPUT')) throw new Error(`expected INVALID_INPUT, got ${String(err)}`);
  return err;
}

describe('ALLOWED_S3_ENDPOINTS entries', () => {
  it.each([
    'https://acc.r2.cloudflarestorage.com',
    'http://minio.lan:9000/tenant',
    'minio.lan',
    'minio.lan:9000',
    '*.r2.cloudflarestorage.com',
    '[::1]:9000',
  ])('accepts %s', (entry) => expect(parseAllowedEndpoint(entry)).toBeDefined());

  it.each([
    'ftp://x.example.com',
    'https://u:p@x.example.com',
    'https://x.example.com/?q=1',
    'x.example.com/path',
    'exa mple.com',
    '*',
    '*.',
  ])('refuses %s', (entry) => expect(parseAllowedEndpoint(entry)).toBeUndefined());

  it('refuses a bad entry when the guard is built (CONFIG_INVALID naming the variable)', () => {
    expect(() => guard({ allowedEndpoints: ['ftp://nope'] })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });
});

describe('EndpointGuard.jobBucket', () => {
  const hosts = dns({
    'acc.r2.cloudflarestorage.com': PUBLIC,
    'acc.r2.cloudflarestorage.com.evil.com': PUBLIC,
    'r2.cloudflarestorage.com': PUBLIC,
    'evilr2.cloudflarestorage.com': PUBLIC,
    's3.example.com': PUBLIC,
    'minio.lan': PUBLIC,
  });

  it.each([
    ['https://acc.r2.cloudflarestorage.com', 'https://acc.r2.cloudflarestorage.com/videos', '', true],
    ['https://acc.r2.cloudflarestorage.com', 'https://acc.r2.cloudflarestorage.com.evil.com', 'b', false],
    ['https://acc.r2.cloudflarestorage.com', 'http://acc.r2.cloudflarestorage.com', 'b', false],
    // A prefix with a path pins the bucket: matched against endpoint/bucket, where the objects go.
    ['https://s3.example.com/tenant-a', 'https://s3.example.com/tenant-a', '', true],
    ['https://s3.example.com/tenant-a', 'https://s3.example.com', 'tenant-a', true],
    ['https://s3.example.com/tenant-a', 'https://s3.example.com/tenant-ab', '', false],
    ['https://s3.example.com/tenant-a', 'https://s3.example.com/tenant-a', 'other', false],
    ['minio.lan:9000', 'http://minio.lan:9000', 'b', true],
    ['minio.lan:9000', 'http://minio.lan:9001', 'b', false],
    ['minio.lan', 'https://MINIO.lan', 'b', true],
    ['*.r2.cloudflarestorage.com', 'https://acc.r2.cloudflarestorage.com', 'b', true],
    ['*.r2.cloudflarestorage.com', 'https://r2.cloudflarestorage.com', 'b', false],
    ['*.r2.cloudflarestorage.com', 'https://evilr2.cloudflarestorage.com', 'b', false],
  ])('allow-list %s; endpoint %s, bucket %j: accepted = %s', async (entry, endpointUrl, bucketName, accepted) => {
    const g = guard({ allowedEndpoints: ['other.example.org', entry], lookup: hosts });
    const config = { ...s3Config(endpointUrl), bucketName };
    if (accepted) {
      await expect(g.jobBucket(config, 'auto')).resolves.toMatchObject({ accessKeyId: 'AKID' });
    } else {
      const err = (await g.jobBucket(config, 'auto').then(
        () => undefined,
        (e: unknown) => e,
      )) as WorkerError;
      expect(err.message).toBe(
        's3Config.endpointUrl: this worker only accepts the bucket endpoints its operator listed (ALLOWED_S3_ENDPOINTS)',
      );
      expect(err.details).toMatchObject({ fields: ['s3Config.endpointUrl'] });
    }
  });

  it('validates the shape first (wrong types name their field)', async () => {
    const err = await guard({})
      .jobBucket({ ...s3Config('https://s3.example.com'), endpointUrl: 5 }, 'auto')
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toMatchObject({ code: 'INVALID_INPUT', details: { fields: ['s3Config.endpointUrl'] } });
  });

  it.each([
    'http://127.0.0.1:9000',
    'http://[::1]:9000',
    'http://169.254.169.254',
    'http://[::ffff:127.0.0.1]:9000',
    'http://10.1.2.3',
    'http://0.0.0.0:80',
  ])('refuses the private IP literal %s without a DNS query', async (endpoint) => {
    const lookup = dns({});
    const err = await refusal(guard({ lookup }), endpoint);
    expect(err.details).toMatchObject({ fields: ['s3Config.endpointUrl'], reason: 'endpoint_refused' });
    expect(lookup.calls).toEqual([]);
  });

  it('refuses a name resolving to any private address, and a name that does not resolve, with one same message', async () => {
    const lookup = dns({
      'internal.example.com': [{ address: '10.0.0.5', family: 4 }],
      'mixed.example.com': [...PUBLIC, { address: 'fd00:ec2::254', family: 6 }],
    });
    const g = guard({ lookup });
    const messages = new Set([
      (await refusal(g, 'https://internal.example.com')).message,
      (await refusal(g, 'https://mixed.example.com')).message,
      (await refusal(g, 'https://nowhere.example.com')).message,
      (await refusal(g, 'http://127.0.0.1:22')).message,
    ]);
    expect([...messages]).toEqual([
      's3Config.endpointUrl: this endpoint cannot be used; it must be a public S3 endpoint whose host resolves to public addresses only',
    ]);
  });

  it('accepts a public name and pins its connections to the guarded lookup; a passing DNS failure is left to that lookup', async () => {
    const lookup = dns({ 's3.example.com': PUBLIC, 'flaky.example.com': 'EAI_AGAIN' });
    const creds = await guard({ lookup }).jobBucket(s3Config('https://s3.example.com/'), 'eu-west-1');
    expect(creds).toMatchObject({ endpointUrl: 'https://s3.example.com', bucket: 'b', region: 'eu-west-1', lookup: expect.any(Function) });
    expect((await guard({ lookup }).jobBucket(s3Config('https://flaky.example.com'), 'auto')).lookup).toEqual(expect.any(Function));
  });

  it('with ALLOW_PRIVATE_URLS a private endpoint is accepted, without DNS and without a pinned lookup', async () => {
    const lookup = dns({});
    const creds = await guard({ allowPrivate: true, lookup }).jobBucket(s3Config('http://127.0.0.1:9000'), 'auto');
    expect(creds.endpointUrl).toBe('http://127.0.0.1:9000');
    expect(creds.lookup).toBeUndefined();
    expect(lookup.calls).toEqual([]);
  });

  it('the allow-list does not open private addresses: both rules hold', async () => {
    const lookup = dns({ 'minio.lan': [{ address: '192.168.1.20', family: 4 }] });
    expect((await refusal(guard({ allowedEndpoints: ['minio.lan:9000'], lookup }), 'http://minio.lan:9000')).details).toMatchObject({
      reason: 'endpoint_refused',
    });
    await expect(
      guard({ allowedEndpoints: ['minio.lan:9000'], allowPrivate: true, lookup }).jobBucket(s3Config('http://minio.lan:9000'), 'auto'),
    ).resolves.toBeDefined();
  });
});

describe('the connect-time lookup', () => {
  type Answer = { err: NodeJS.ErrnoException | null; address: unknown; family?: number };
  const ask = (g: EndpointGuard, host: string, options: { all?: boolean; family?: number }): Promise<Answer> =>
    new Promise((resolve) => g.socketLookup()(host, options, (err, address, family) => resolve({ err, address, family })));

  it('hands the socket the checked addresses (one, or all), by family when asked', async () => {
    const lookup = dns({
      's3.example.com': [
        { address: '93.184.216.34', family: 4 },
        { address: '2606:2800:220:1::1', family: 6 },
      ],
    });
    const g = guard({ lookup });
    expect(await ask(g, 's3.example.com', {})).toEqual({ err: null, address: '93.184.216.34', family: 4 });
    expect(await ask(g, 's3.example.com', { family: 6 })).toEqual({ err: null, address: '2606:2800:220:1::1', family: 6 });
    expect((await ask(g, 's3.example.com', { all: true })).address).toEqual([
      { address: '93.184.216.34', family: 4 },
      { address: '2606:2800:220:1::1', family: 6 },
    ]);
  });

  it('refuses an answer holding any private address', async () => {
    const g = guard({ lookup: dns({ 'rebind.example.com': [...PUBLIC, { address: '127.0.0.1', family: 4 }] }) });
    const { err } = await ask(g, 'rebind.example.com', { all: true });
    expect(err).toMatchObject({ code: 'EADDRNOTALLOWED' });
  });
});

describe('DNS rebinding against a real upload', () => {
  let dir: string;
  let file: string;
  let server: net.Server;
  let port: number;
  let connections = 0;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'rebind-'));
    file = path.join(dir, 'v.mp4');
    await writeFile(file, 'video bytes');
    server = net.createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  it('a name that answers public at the check and loopback at the connect never reaches loopback', async () => {
    let asked = 0;
    const lookup: Lookup = async () => (++asked === 1 ? PUBLIC : [{ address: '127.0.0.1', family: 4 }]);
    const bucket = await guard({ lookup }).jobBucket(s3Config(`http://rebind.example.com:${port}`), 'auto');
    const store = new VideoStore({
      keyPrefix: '',
      presignExpiresS: 60,
      logger: silentLogger,
      outputDir: dir,
      mode: 'production',
      upload: { minDelayMs: 1, maxDelayMs: 1 },
    });
    const err = (await store.put({ path: file, name: 'v.mp4', jobId: 'j', bucket }).then(
      () => undefined,
      (e: unknown) => e,
    )) as WorkerError;
    expect(err.code).toBe('UPLOAD_FAILED');
    expect(err.message).not.toMatch(/127\.0\.0\.1|EADDRNOTALLOWED|refused/);
    expect(asked).toBe(2); // the check, then the socket's own lookup; a refusal is not retried
    expect(connections).toBe(0);
  });
});
