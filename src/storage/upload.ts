// Upload of one local file: one streaming PutObject, or a resumable multipart upload when large,
// retried through S3 outages within a budget (outage-retry.ts). The file is only read, never
// moved or removed: it stays until this settles (every request in flight included).
import { stat } from 'node:fs/promises';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Logger } from '../lib/logger';
import { describeS3Failure, classifyS3Error } from '../s3';
import { BufferPool, FileRangeBody } from './file-body';
import { MultipartUpload, type ObjectTarget } from './multipart';
import { OutageGaveUp, retryThroughOutage, type OutageRetryOptions } from './outage-retry';
import { storageError } from './errors';

export interface UploadPolicy {
  /** How long an upload keeps retrying while no S3 request succeeds (UPLOAD_RETRY_BUDGET_S). */
  retryBudgetMs: number;
  /** Attempts in a row that got no answer at all (hung server) before giving up. */
  maxTimeoutsInARow: number;
  minDelayMs: number;
  maxDelayMs: number;
  /** Parts are ≥ 5 MiB and, for R2, all but the last the same size. */
  partSize: number;
  /** Parts in flight at once. */
  queueSize: number;
  /** Files up to this size go as one PutObject (one request, no part assembly on the server). */
  multipartThreshold: number;
}

/**
 * 16 MiB parts × 8 in flight: with them the client side of a multipart upload runs faster than one
 * PutObject on a loopback S3 server (`npm run bench:storage`, bench/results/storage.json). Parts are
 * streamed from the file through shared buffers, so neither number costs memory.
 */
export const DEFAULT_UPLOAD_POLICY: UploadPolicy = {
  retryBudgetMs: 120_000,
  maxTimeoutsInARow: 3,
  minDelayMs: 500,
  maxDelayMs: 10_000,
  partSize: 16 * 1024 * 1024,
  queueSize: 8,
  multipartThreshold: 64 * 1024 * 1024,
};

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
  policy?: Partial<UploadPolicy>;
  /**
   * Whose endpoint this is. A job's own (`s3Config`) gets failures described without the server's
   * answer: its status or socket error would tell the sender what listens where (a port-scan oracle).
   */
  endpoint?: 'worker' | 'job';
  /** Test seams for the waits between attempts. */
  retryClock?: Pick<OutageRetryOptions, 'now' | 'sleep' | 'random'>;
}

async function putWhole(client: S3Client, target: ObjectTarget, signal: AbortSignal | undefined): Promise<void> {
  const body = new FileRangeBody(target.path, 0, target.bytes, new BufferPool());
  try {
    await client.send(
      new PutObjectCommand({
        Bucket: target.bucket,
        Key: target.key,
        Body: body,
        ContentLength: target.bytes,
        ContentType: target.contentType,
        ContentDisposition: target.contentDisposition,
      }),
      { abortSignal: signal },
    );
  } finally {
    body.destroy();
  }
}

/** Uploads `req.path`; throws WorkerError UPLOAD_FAILED (or the signal's reason when aborted). */
export async function uploadFile(client: S3Client, req: UploadRequest, opts: UploadOptions): Promise<void> {
  const policy = { ...DEFAULT_UPLOAD_POLICY, ...opts.policy };
  const { size } = await stat(req.path);
  const target: ObjectTarget = { ...req, bytes: size };
  const multipart =
    size > policy.multipartThreshold ? new MultipartUpload(client, target, policy.partSize, policy.queueSize, opts.signal) : undefined;
  const job = opts.endpoint === 'job';
  const now = opts.retryClock?.now ?? Date.now;
  const started = now();
  try {
    await retryThroughOutage(
      async (progress) => {
        if (multipart) return multipart.attempt(progress);
        await putWhole(client, target, opts.signal);
      },
      {
        budgetMs: policy.retryBudgetMs,
        maxTimeoutsInARow: policy.maxTimeoutsInARow,
        minDelayMs: policy.minDelayMs,
        maxDelayMs: policy.maxDelayMs,
        ...opts.retryClock,
        ...(opts.signal ? { signal: opts.signal } : {}),
        onFailedAttempt: ({ failure, attemptNumber, failingForMs, delayMs }) =>
          opts.logger.warn('upload attempt failed, retrying', {
            key: req.key,
            attempt: attemptNumber,
            failingForMs,
            delayMs,
            ...(multipart ? { partsStored: multipart.storedParts, parts: multipart.partCount } : {}),
            reason: describeS3Failure(failure),
          }),
      },
    );
  } catch (error) {
    await multipart?.abort(opts.logger);
    if (opts.signal?.aborted) throw opts.signal.reason;
    const gaveUp = error instanceof OutageGaveUp ? error : undefined;
    const last = gaveUp ? gaveUp.last : error;
    const failure = classifyS3Error(last);
    const reason = describeS3Failure(failure);
    const tried =
      gaveUp && gaveUp.attempts > 1 ? ` (gave up after ${gaveUp.attempts} attempts in ${Math.round((now() - started) / 1000)} s)` : '';
    opts.logger.error('upload failed', {
      bucket: req.bucket,
      key: req.key,
      reason,
      attempts: gaveUp?.attempts,
      failingForMs: gaveUp?.failingForMs,
      why: gaveUp?.reason,
      error: last,
    });
    if (job) {
      throw storageError(
        'UPLOAD_FAILED',
        `Could not upload ${req.key} to the job's bucket ${req.bucket} — check s3Config: endpointUrl, bucketName, accessId and accessSecret`,
        { retryable: failure.retryable, details: { bucket: req.bucket, key: req.key } },
      );
    }
    const hint =
      failure.status === 403 || failure.status === 401
        ? ' — check the bucket credentials and that they may write to this bucket'
        : failure.status === 404
          ? ' — check that the bucket exists'
          : '';
    throw storageError('UPLOAD_FAILED', `Could not upload ${req.key} to bucket ${req.bucket}: ${reason}${tried}${hint}`, {
      retryable: failure.retryable,
      details: { bucket: req.bucket, key: req.key, status: failure.status, reason: failure.code },
    });
  }
}
