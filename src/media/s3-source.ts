// s3://bucket/key inputs, read with the job's or the worker's bucket credentials.
import type { Readable } from 'node:stream';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { isWorkerError } from '../lib/errors';
import type { BucketCredentials } from '../s3';
import type { S3ClientFactory } from '../s3';
import { classifyS3Error, describeS3Failure } from '../s3';
import { fetchFailed, invalidInput, tooLarge, type InputField } from './errors';
import type { InputSource } from './input-source';
import { TooLargeError, writeCapped } from './sink';

export function parseS3Uri(field: InputField, uri: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!m) throw invalidInput(field, 'an s3:// input must look like s3://bucket/key', { reason: 's3_uri' });
  return { bucket: m[1] as string, key: m[2] as string };
}

export async function downloadS3(
  field: InputField,
  uri: string,
  dest: string,
  opts: { s3: S3ClientFactory; bucket: BucketCredentials | undefined; maxBytes: number; signal: AbortSignal },
): Promise<number> {
  const { bucket, key } = parseS3Uri(field, uri);
  if (!opts.bucket) {
    throw invalidInput(field, 's3:// inputs need bucket credentials: configure BUCKET_* on the worker or send s3Config with the job', {
      reason: 'no_credentials',
    });
  }
  const client = opts.s3({ ...opts.bucket, bucket });
  try {
    const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: opts.signal });
    if (res.ContentLength !== undefined && res.ContentLength > opts.maxBytes) {
      (res.Body as Readable | undefined)?.destroy();
      throw tooLarge(field, opts.maxBytes, res.ContentLength);
    }
    return await writeCapped((res.Body as Readable | undefined) ?? [], dest, opts.maxBytes);
  } catch (error) {
    if (opts.signal.aborted) throw opts.signal.reason;
    if (error instanceof TooLargeError) throw tooLarge(field, opts.maxBytes);
    if (isWorkerError(error)) throw error;
    const failure = classifyS3Error(error);
    throw fetchFailed(field, `could not read s3://${bucket}/${key} (${describeS3Failure(failure)})`, {
      retryable: failure.retryable,
      cause: error,
      details: { status: failure.status, reason: failure.code },
    });
  } finally {
    client.destroy();
  }
}

/** s3://bucket/key, read with the request's bucket credentials. */
export function s3Source(opts: { s3: S3ClientFactory; maxBytes: number }): InputSource {
  return {
    forms: ['s3://'],
    retried: true,
    accepts: (scheme) => scheme === 's3',
    fetch: ({ field, source, dest, bucket, signal }) =>
      downloadS3(field, source, dest, { s3: opts.s3, bucket, maxBytes: opts.maxBytes, signal }),
  };
}
