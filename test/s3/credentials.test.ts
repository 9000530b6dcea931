import { describe, expect, it } from '@jest/globals';
import type { BucketConfig } from '../../src/config';
import { loadConfig } from '../../src/config';
import { WorkerError } from '../../src/lib/errors';
import { bucketFromConfig, bucketFromS3Config } from '../../src/s3';

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
    expect(bucketFromConfig(bucketConfig({ ...creds, BUCKET_ENDPOINT_URL: 'https://s3.example.com', BUCKET_NAME: 'b', BUCKET_REGION: 'eu-west-1' }))).toMatchObject({
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

describe('bucketFromS3Config', () => {
  it('maps RunPod s3Config and refuses an incomplete one as INVALID_INPUT on s3Config', () => {
    expect(bucketFromS3Config({ accessId: 'a', accessSecret: 's', bucketName: 'b', endpointUrl: 'https://e.example.com/' })).toEqual({
      endpointUrl: 'https://e.example.com',
      accessKeyId: 'a',
      secretAccessKey: 's',
      bucket: 'b',
      region: 'auto',
    });
    expect(() => bucketFromS3Config({ accessId: '', accessSecret: 's', bucketName: 'b', endpointUrl: 'https://e.example.com' })).toThrow(
      expect.objectContaining({ code: 'INVALID_INPUT', details: { field: 's3Config' } }),
    );
  });
});
