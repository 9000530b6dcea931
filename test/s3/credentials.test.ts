import { describe, expect, it } from '@jest/globals';
import type { BucketConfig } from '../../src/config';
import { loadConfig } from '../../src/config';
import { WorkerError } from '../../src/lib/errors';
import { bucketFromConfig, bucketFromS3Config, parseS3Config } from '../../src/s3';

const bucketConfig = (env: Record<string, string>): BucketConfig => loadConfig(env).bucket;

describe('bucketFromConfig', () => {
  it('is undefined when nothing is configured', () => {
    expect(bucketFromConfig(bucketConfig({}))).toBeUndefined();
  });

  it('takes the bucket from BUCKET_NAME or, RunPod-style, from the endpoint path', () => {
    const creds = { BUCKET_ACCESS_KEY_ID: 'id', BUCKET_SECRET_ACCESS_KEY: 'secret' };
    expect(bucketFromConfig(bucketConfig({ ...creds, BUCKET_ENDPOINT_URL: 'https://acc.r2.cloudflarestorage.com/videos' }))).toEqual({
      endpointUrl: 'https://acc.r2.cloudflarestorage.com',
      accessKeyId: 'id',
      secretAccessKey: 'secret',
      bucket: 'videos',
      region: 'auto',
    });
    expect(
      bucketFromConfig(
        bucketConfig({ ...creds, BUCKET_ENDPOINT_URL: 'https://s3.example.com', BUCKET_NAME: 'b', BUCKET_REGION: 'eu-west-1' }),
      ),
    ).toMatchObject({
      endpointUrl: 'https://s3.example.com',
      bucket: 'b',
      region: 'eu-west-1',
    });
  });

  it('refuses half a configuration, naming what is missing but no values', () => {
    let err: unknown;
    try {
      bucketFromConfig(bucketConfig({ BUCKET_ENDPOINT_URL: 'https://s3.example.com', BUCKET_SECRET_ACCESS_KEY: 'shh' }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(WorkerError);
    expect((err as WorkerError).code).toBe('CONFIG_INVALID');
    expect((err as WorkerError).message).toContain('BUCKET_ACCESS_KEY_ID');
    expect((err as WorkerError).message).toContain('BUCKET_NAME');
    expect((err as WorkerError).message).not.toContain('shh');
  });
});

describe('parseS3Config (RunPod s3Config, declared once as a zod schema)', () => {
  const good = { accessId: 'AKID', accessSecret: 'sEcReT-value', bucketName: 'b', endpointUrl: 'https://e.example.com' };

  function refusal(raw: unknown): WorkerError {
    try {
      parseS3Config(raw);
    } catch (err) {
      if (err instanceof WorkerError && err.code === 'INVALID_INPUT') return err;
      throw err;
    }
    throw new Error('expected INVALID_INPUT');
  }

  it('passes a good one through (unknown keys dropped)', () => {
    expect(parseS3Config({ ...good, extra: 1 })).toEqual(good);
  });

  it.each([
    [{ endpointUrl: 5 }, 's3Config.endpointUrl: must be a string'],
    [{ bucketName: [] }, 's3Config.bucketName: must be a string'],
    [{ accessId: null }, 's3Config.accessId: must be a string'],
    [{ accessSecret: '' }, 's3Config.accessSecret: must not be empty'],
    [{ endpointUrl: 'not a url' }, 's3Config.endpointUrl: must be an http:// or https:// URL'],
    [{ endpointUrl: 'ftp://e.example.com' }, 's3Config.endpointUrl: must be an http:// or https:// URL'],
    [{ endpointUrl: 'https://me:pw@e.example.com' }, 's3Config.endpointUrl: must not carry user:password@'],
    [{ bucketName: '../other' }, 's3Config.bucketName: must be a bucket name'],
  ])('refuses %j as INVALID_INPUT naming the field', (patch, expected) => {
    const err = refusal({ ...good, ...patch });
    expect(err.message).toContain(expected);
    expect(err.details.fields).toEqual([expected.split(':')[0]]);
  });

  it('names every missing field at once, and never echoes a value', () => {
    const err = refusal({ accessSecret: 'sEcReT-value', endpointUrl: 5 });
    expect(err.details.fields).toEqual(['s3Config.accessId', 's3Config.bucketName', 's3Config.endpointUrl']);
    expect(err.message).toContain('s3Config.accessId: is required');
    expect(err.message).not.toContain('sEcReT');
  });

  it.each([['a string'], [null], [[1, 2]], [7]])('refuses a non-object %j', (raw) => {
    expect(refusal(raw).details.fields).toEqual(['s3Config']);
  });
});

describe('bucketFromS3Config', () => {
  it('maps RunPod s3Config; the bucket may be the endpoint path when bucketName is empty', () => {
    expect(bucketFromS3Config({ accessId: 'a', accessSecret: 's', bucketName: 'b', endpointUrl: 'https://e.example.com/' })).toEqual({
      endpointUrl: 'https://e.example.com',
      accessKeyId: 'a',
      secretAccessKey: 's',
      bucket: 'b',
      region: 'auto',
    });
    expect(
      bucketFromS3Config({ accessId: 'a', accessSecret: 's', bucketName: '', endpointUrl: 'https://e.example.com/videos?x=1' }),
    ).toMatchObject({
      endpointUrl: 'https://e.example.com',
      bucket: 'videos',
    });
    expect(() => bucketFromS3Config({ accessId: 'a', accessSecret: 's', bucketName: '', endpointUrl: 'https://e.example.com' })).toThrow(
      expect.objectContaining({ code: 'INVALID_INPUT', details: { fields: ['s3Config.bucketName'] } }),
    );
  });
});
