// Streaming upload of one local file (one PutObject, or multipart when large), retried as a whole
// on 5xx / network errors.
import { createReadStream, type ReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { WorkerError } from '../lib/errors';
import type { Logger } from '../lib/logger';
import { retry, type RetryOptions } from '../lib/retry';
import { classifyS3Error, describeS3Failure } from '../s3';

/**
 * R2 wants every part but the last the same size (lib-storage's fixed slicing does that) and
 * ≥ 5 MiB. 8 MiB × 10 000 parts allows 78 GiB, far beyond any video we write; memory stays
 * near partSize × queueSize (≈ 32 MiB).
 */
export const PART_SIZE = 8 * 1024 * 1024;
export const QUEUE_SIZE = 4;
/**
 * Up to this size one streaming PutObject: a single request and no part assembly on the server
 * (measured faster for typical 5–50 MB results); larger files go multipart, parts in parallel.
 * R2 takes single PUTs up to 5 GiB − 5 MiB.
 */
export const MULTIPART_THRESHOLD = 64 * 1024 * 1024;

export interface UploadRequest {
  path: string;
  bucket: string;
  key: string;
  contentType: string;
  contentDisposition: string;
}

export interface UploadOptions {
  logger: Logger;
  signal?: AbortSignal;
  retry?: Omit<RetryOptions, 'signal' | 'shouldRetry' | 'onFailedAttempt'>;
  partSize?: number;
  queueSize?: number;
  /** Files larger than this go multipart. Default MULTIPART_THRESHOLD. */
  multipartThreshold?: number;
}

function objectParams(req: UploadRequest, body: ReadStream, size: number) {
  return {
    Bucket: req.bucket,
    Key: req.key,
    Body: body,
    ContentLength: size,
    ContentType: req.contentType,
    ContentDisposition: req.contentDisposition,
  };
}

async function uploadOnce(client: S3Client, req: UploadRequest, opts: UploadOptions): Promise<void> {
  const { size } = await stat(req.path);
  const body = createReadStream(req.path, { highWaterMark: 1024 * 1024 });
  if (size <= (opts.multipartThreshold ?? MULTIPART_THRESHOLD)) {
    try {
      const put = new PutObjectCommand(objectParams(req, body, size));
      await client.send(put, opts.signal ? { abortSignal: opts.signal } : {});
    } finally {
      body.destroy();
    }
    return;
  }
  const upload = new Upload({
    client,
    partSize: opts.partSize ?? PART_SIZE,
    queueSize: opts.queueSize ?? QUEUE_SIZE,
    params: objectParams(req, body, size),
  });
  const onAbort = (): void => void upload.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await upload.done();
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    body.destroy();
  }
}

/** Uploads `req.path`; throws WorkerError UPLOAD_FAILED (or the signal's reason when aborted). */
export async function uploadFile(client: S3Client, req: UploadRequest, opts: UploadOptions): Promise<void> {
  try {
    await retry(() => uploadOnce(client, req, opts), {
      attempts: 4,
      minDelayMs: 500,
      maxDelayMs: 8_000,
      maxRetryTimeMs: 120_000,
      ...opts.retry,
      signal: opts.signal,
      shouldRetry: ({ error }) => classifyS3Error(error).retryable,
      onFailedAttempt: ({ error, attemptNumber, delayMs }) =>
        opts.logger.warn('upload attempt failed, retrying', {
          key: req.key,
          attempt: attemptNumber,
          delayMs,
          reason: describeS3Failure(classifyS3Error(error)),
        }),
    });
  } catch (error) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    const failure = classifyS3Error(error);
    const reason = describeS3Failure(failure);
    opts.logger.error('upload failed', { bucket: req.bucket, key: req.key, reason, error });
    const hint =
      failure.status === 403 || failure.status === 401
        ? ' — check the bucket credentials and that they may write to this bucket'
        : failure.status === 404
          ? ' — check that the bucket exists'
          : '';
    throw new WorkerError('UPLOAD_FAILED', `Could not upload ${req.key} to bucket ${req.bucket}: ${reason}${hint}`, {
      retryable: failure.retryable,
      details: { bucket: req.bucket, key: req.key, status: failure.status, reason: failure.code },
    });
  }
}
