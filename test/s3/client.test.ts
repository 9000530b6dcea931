// The S3 client every part uses: its sockets resolve through the credentials' lookup (the guard's
// pin) for every request kind, and the SDK's own log lines land in our JSON logger, not on console.
import { createHash, randomBytes } from 'node:crypto';
import type { LookupAddress } from 'node:dns';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { LookupFunction } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { createLogger, silentLogger } from '../../src/lib/logger';
import { createS3Client, type BucketCredentials } from '../../src/s3';
import { uploadFile } from '../../src/storage/upload';
import { s3TestServer } from '../setup/s3-server';
import { startFaultProxy, type FaultProxy } from '../support/s3-fault-proxy';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 's3-client-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('createS3Client', () => {
  it('connects through the credentials’ lookup for PutObject (Expect: 100-continue) and every multipart request', async () => {
    const s3 = s3TestServer();
    const port = new URL(s3.endpoint).port;
    const asked: string[] = [];
    // A name no DNS knows: only the lookup given with the credentials can reach the server.
    const lookup: LookupFunction = (hostname, options, cb) => {
      asked.push(hostname);
      if (options.all) (cb as (e: null, a: LookupAddress[]) => void)(null, [{ address: '127.0.0.1', family: 4 }]);
      else cb(null, '127.0.0.1', 4);
    };
    const creds: BucketCredentials = {
      endpointUrl: `http://s3.pinned.invalid:${port}`,
      accessKeyId: s3.accessKeyId,
      secretAccessKey: s3.secretAccessKey,
      bucket: s3.bucket,
      region: s3.region,
      lookup,
    };
    const data = randomBytes(11 * 1024 * 1024);
    const file = path.join(dir, 'pinned.mp4');
    await writeFile(file, data);
    const client = createS3Client(creds);
    try {
      const req = { path: file, bucket: s3.bucket, contentType: 'video/mp4', contentDisposition: 'inline' };
      await uploadFile(client, { ...req, key: 'pinned/single.mp4' }, { logger: silentLogger, policy: { retryBudgetMs: 0 } });
      await uploadFile(
        client,
        { ...req, key: 'pinned/multi.mp4' },
        {
          logger: silentLogger,
          policy: { retryBudgetMs: 0, multipartThreshold: 5 * 1024 * 1024, partSize: 5 * 1024 * 1024 },
        },
      );
      for (const key of ['pinned/single.mp4', 'pinned/multi.mp4']) {
        const got = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
        const bytes = Buffer.from(await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
        expect(createHash('sha256').update(bytes).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
      }
    } finally {
      client.destroy();
    }
    expect(asked.length).toBeGreaterThan(0);
    expect(new Set(asked)).toEqual(new Set(['s3.pinned.invalid']));
  });

  describe('SDK logging', () => {
    let proxy: FaultProxy;
    beforeAll(async () => {
      proxy = await startFaultProxy(s3TestServer().endpoint, () => ({ status: 503 }));
    });
    afterAll(async () => proxy.close());

    it('a failed streaming PUT logs the SDK’s warning as one JSON line, and nothing reaches console', async () => {
      const s3 = s3TestServer();
      const lines: string[] = [];
      const logger = createLogger({ level: 'debug', write: (l) => void lines.push(l) });
      const warn = jest.spyOn(console, 'warn').mockImplementation(() => {});
      const log = jest.spyOn(console, 'log').mockImplementation(() => {});
      const file = path.join(dir, 'fail.mp4');
      await writeFile(file, 'x'.repeat(1000));
      const client = createS3Client(
        {
          endpointUrl: proxy.endpoint,
          accessKeyId: s3.accessKeyId,
          secretAccessKey: s3.secretAccessKey,
          bucket: s3.bucket,
          region: s3.region,
        },
        { logger },
      );
      try {
        const { createReadStream } = await import('node:fs');
        const err = await client
          .send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'k.mp4', Body: createReadStream(file), ContentLength: 1000 }))
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        expect(err).toMatchObject({ $metadata: { httpStatusCode: 503 } });
      } finally {
        client.destroy();
        warn.mockRestore();
        log.mockRestore();
      }
      expect(warn).not.toHaveBeenCalled();
      expect(log).not.toHaveBeenCalled();
      const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(records).toContainEqual(
        expect.objectContaining({
          level: 'WARN',
          component: 'aws-sdk',
          message: expect.stringMatching(/^aws-sdk: .*non-retryable streaming request/),
        }),
      );
      // The SDK's per-call record keeps only its gist: no request input (keys, bodies) in the log.
      expect(records).toContainEqual(
        expect.objectContaining({ level: 'DEBUG', message: 'aws-sdk call', command: 'PutObjectCommand', status: 503 }),
      );
      expect(lines.join('\n')).not.toContain('"input"');
    });
  });
});
