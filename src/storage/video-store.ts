// Where a finished MP4 goes: the bucket (job's or worker's), inline base64, or a local folder.
import { copyFile, mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../lib/logger';
import type { S3Client } from '@aws-sdk/client-s3';
import type { BucketCredentials } from '../s3';
import { createS3Client, type S3ClientFactory } from '../s3';
import { uploadFile, type UploadOptions, type UploadPolicy } from './upload';
import { contentDisposition, presignGet, publicObjectUrl } from './urls';
import { storageError } from './errors';

export const VIDEO_CONTENT_TYPE = 'video/mp4';
/** 7 MiB raw ≈ 9.3 MiB of base64: one such video still fits RunPod's 10 MB /run result. */
export const DEFAULT_INLINE_MAX_BYTES = 7 * 1024 * 1024;

export interface StoredVideo {
  /** Presigned or public URL; a `data:video/mp4;base64,…` URI when inline; a path or local-API URL in local modes. */
  url: string;
  bucket?: string;
  key?: string;
  content_type: typeof VIDEO_CONTENT_TYPE;
  bytes: number;
  /** True when `url` carries the video itself (no bucket, production, small file). */
  inline?: true;
  /** Local modes: where the copy was written. */
  path?: string;
}

export interface VideoStoreOptions {
  /** The worker's bucket; `put` may be given a job's own instead. */
  bucket?: BucketCredentials;
  keyPrefix: string;
  publicUrl?: string;
  presignExpiresS: number;
  logger: Logger;
  /** Local modes without a bucket copy outputs here (`<outputDir>/<jobId>/<name>`). */
  outputDir: string;
  mode: 'production' | 'local';
  inlineMaxBytes?: number;
  /** Local API: base URL under which `outputDir` is served; paths are returned otherwise. */
  filesBaseUrl?: string;
  /** Builds the S3 clients (timeouts, SDK logging); default createS3Client's defaults. */
  s3?: S3ClientFactory;
  /** Retry budget, part size and the like; defaults DEFAULT_UPLOAD_POLICY. */
  upload?: Partial<UploadPolicy>;
  /** Test seam for the waits between upload attempts. */
  retryClock?: UploadOptions['retryClock'];
}

export interface VideoFile {
  path: string;
  /** File name in the bucket/folder, e.g. `steadydancer_00001.mp4`. */
  name: string;
  jobId: string;
  /** A job's own bucket (`s3Config`, checked by EndpointGuard.jobBucket) instead of the worker's. */
  bucket?: BucketCredentials;
  /** The job's own key prefix (its `output.key_prefix`) instead of the store's. */
  keyPrefix?: string;
  /** Local API: the base URL of this run's file route, instead of the store's. */
  filesBaseUrl?: string;
  /** The job's logger (carrying its request id) instead of the store's. */
  logger?: Logger;
}

/** Job ids and names become key segments: keep them to one harmless path segment each. */
function safeSegment(s: string, what: string): string {
  const cleaned = s.replace(/[^A-Za-z0-9._-]/g, '_');
  if (!cleaned || cleaned === '.' || cleaned === '..') throw storageError('INTERNAL', `Unusable ${what} "${s}" for a storage key`);
  return cleaned;
}

export class VideoStore {
  private readonly opts: VideoStoreOptions;
  private readonly s3: S3ClientFactory;
  /** The worker's bucket client, kept for the worker's life: its connections serve every job. */
  private workerClient: S3Client | undefined;

  constructor(opts: VideoStoreOptions) {
    this.opts = opts;
    this.s3 = opts.s3 ?? ((creds) => createS3Client(creds));
  }

  async put(file: VideoFile, signal?: AbortSignal): Promise<StoredVideo> {
    const bucket = file.bucket ?? this.opts.bucket;
    const name = safeSegment(file.name, 'file name');
    const jobId = safeSegment(file.jobId, 'job id');
    const { size } = await stat(file.path);
    const logger = file.logger ?? this.opts.logger;
    if (bucket) {
      const key = `${file.keyPrefix ?? this.opts.keyPrefix}${jobId}/${name}`;
      return this.toBucket(bucket, { path: file.path, key, name, bytes: size }, logger, signal);
    }
    if (this.opts.mode === 'production') return this.inline(file.path, size);
    return this.toFolder(file.path, jobId, name, size, file.filesBaseUrl ?? this.opts.filesBaseUrl);
  }

  /** Releases the worker's bucket client (its sockets); the store stays usable. */
  close(): void {
    this.workerClient?.destroy();
    this.workerClient = undefined;
  }

  private async toBucket(
    bucket: BucketCredentials,
    object: { path: string; key: string; name: string; bytes: number },
    logger: Logger,
    signal: AbortSignal | undefined,
  ): Promise<StoredVideo> {
    // A job's own bucket gets a client of its own, dropped after the upload; the worker's is reused.
    const isWorkerBucket = bucket === this.opts.bucket;
    const client = isWorkerBucket ? (this.workerClient ??= this.s3(bucket)) : this.s3(bucket);
    try {
      const started = Date.now();
      await uploadFile(
        client,
        {
          path: object.path,
          bucket: bucket.bucket,
          key: object.key,
          contentType: VIDEO_CONTENT_TYPE,
          contentDisposition: contentDisposition(object.name),
        },
        {
          logger,
          signal,
          endpoint: isWorkerBucket ? 'worker' : 'job',
          ...(this.opts.upload ? { policy: this.opts.upload } : {}),
          ...(this.opts.retryClock ? { retryClock: this.opts.retryClock } : {}),
        },
      );
      logger.info('video uploaded', { bucket: bucket.bucket, key: object.key, bytes: object.bytes, ms: Date.now() - started });
      const url =
        this.opts.publicUrl && isWorkerBucket
          ? publicObjectUrl(this.opts.publicUrl, object.key)
          : await presignGet(client, bucket.bucket, object.key, this.opts.presignExpiresS);
      return { url, bucket: bucket.bucket, key: object.key, content_type: VIDEO_CONTENT_TYPE, bytes: object.bytes };
    } finally {
      if (!isWorkerBucket) client.destroy();
    }
  }

  private async inline(filePath: string, bytes: number): Promise<StoredVideo> {
    const max = this.opts.inlineMaxBytes ?? DEFAULT_INLINE_MAX_BYTES;
    if (bytes > max) {
      throw storageError(
        'OUTPUT_TOO_LARGE',
        `The video is ${bytes} bytes, more than the ${max} bytes that can be returned inline (RunPod caps result size). ` +
          'Configure a bucket: set BUCKET_ENDPOINT_URL, BUCKET_ACCESS_KEY_ID, BUCKET_SECRET_ACCESS_KEY and BUCKET_NAME on the endpoint, or send s3Config with the job',
        { details: { bytes, maxInlineBytes: max } },
      );
    }
    const base64 = (await readFile(filePath)).toString('base64');
    return { url: `data:${VIDEO_CONTENT_TYPE};base64,${base64}`, content_type: VIDEO_CONTENT_TYPE, bytes, inline: true };
  }

  private async toFolder(
    filePath: string,
    jobId: string,
    name: string,
    bytes: number,
    filesBaseUrl: string | undefined,
  ): Promise<StoredVideo> {
    const dir = path.join(this.opts.outputDir, jobId);
    const dest = path.join(dir, name);
    await mkdir(dir, { recursive: true });
    await copyFile(filePath, dest);
    const url = filesBaseUrl ? `${filesBaseUrl.replace(/\/+$/, '')}/${encodeURIComponent(jobId)}/${encodeURIComponent(name)}` : dest;
    return { url, content_type: VIDEO_CONTENT_TYPE, bytes, path: dest };
  }
}
