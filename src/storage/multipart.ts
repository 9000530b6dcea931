// One multipart upload of a local file that survives failed attempts: the upload id and every
// stored part's ETag are kept between attempts, so a retry sends only the parts still missing.
// Each part is streamed from its range of the file (never buffered whole) through buffers the
// parts share (file-body.ts), so memory stays small whatever the part size.
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { Logger } from '../lib/logger';
import { classifyS3Error } from '../s3';
import { BufferPool, FileRangeBody } from './file-body';
import type { UploadRequest } from './upload';

/** S3's cap on parts per upload. */
const MAX_PARTS = 10_000;

/** The upload's request and the file's size, taken once before the first attempt. */
export interface ObjectTarget extends UploadRequest {
  bytes: number;
}

/** The error to surface when several requests of one attempt failed: a refusal first, then an answer, then a timeout. */
function worstOf(errors: unknown[]): unknown {
  const rank = (e: unknown): number => {
    const f = classifyS3Error(e);
    return !f.retryable ? 0 : f.timeout ? 2 : 1;
  };
  return errors.reduce((a, b) => (rank(b) < rank(a) ? b : a));
}

export class MultipartUpload {
  private uploadId: string | undefined;
  private readonly etags = new Map<number, string>();
  private completeSent = false;
  private readonly buffers = new BufferPool();
  readonly partSize: number;
  readonly partCount: number;

  constructor(
    private readonly client: S3Client,
    private readonly target: ObjectTarget,
    partSize: number,
    private readonly queueSize: number,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.partSize = Math.max(partSize, Math.ceil(target.bytes / MAX_PARTS));
    this.partCount = Math.max(1, Math.ceil(target.bytes / this.partSize));
  }

  /** Parts stored so far (kept across attempts). */
  get storedParts(): number {
    return this.etags.size;
  }

  /** One attempt: create the upload if there is none yet, send the missing parts, complete. */
  async attempt(progress: () => void): Promise<void> {
    if (this.uploadId === undefined) {
      const created = await this.client.send(
        new CreateMultipartUploadCommand({
          Bucket: this.target.bucket,
          Key: this.target.key,
          ContentType: this.target.contentType,
          ContentDisposition: this.target.contentDisposition,
        }),
        { abortSignal: this.signal },
      );
      if (!created.UploadId) throw new Error('CreateMultipartUpload answered without an UploadId');
      this.uploadId = created.UploadId;
      progress();
    }
    await this.sendMissingParts(this.uploadId, progress);
    await this.complete(this.uploadId);
  }

  /** Best effort: frees the stored parts on the server. Never throws. */
  async abort(logger: Logger): Promise<void> {
    if (this.uploadId === undefined) return;
    try {
      await this.client.send(
        new AbortMultipartUploadCommand({ Bucket: this.target.bucket, Key: this.target.key, UploadId: this.uploadId }),
        { abortSignal: AbortSignal.timeout(5_000) }, // best effort: a hung S3 must not hold the job much longer
      );
    } catch (error) {
      logger.warn('could not abort the multipart upload; its parts stay until the bucket expires them', {
        key: this.target.key,
        reason: classifyS3Error(error).code,
      });
    }
  }

  /** Up to queueSize parts in flight; after a failure no new part starts, and every part in flight settles before this returns. */
  private async sendMissingParts(uploadId: string, progress: () => void): Promise<void> {
    const missing: number[] = [];
    for (let n = 1; n <= this.partCount; n++) if (!this.etags.has(n)) missing.push(n);
    const errors: unknown[] = [];
    let next = 0;
    const lane = async (): Promise<void> => {
      while (errors.length === 0 && next < missing.length) {
        const partNumber = missing[next++] as number;
        try {
          this.etags.set(partNumber, await this.sendPart(uploadId, partNumber));
          progress();
        } catch (error) {
          errors.push(error);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.queueSize, missing.length) }, lane));
    if (errors.length > 0) throw worstOf(errors);
  }

  private async sendPart(uploadId: string, partNumber: number): Promise<string> {
    const start = (partNumber - 1) * this.partSize;
    const length = Math.min(this.partSize, this.target.bytes - start);
    const body = new FileRangeBody(this.target.path, start, length, this.buffers);
    try {
      const out = await this.client.send(
        new UploadPartCommand({
          Bucket: this.target.bucket,
          Key: this.target.key,
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: body,
          ContentLength: length,
        }),
        { abortSignal: this.signal },
      );
      if (!out.ETag) throw new Error(`UploadPart ${partNumber} answered without an ETag`);
      return out.ETag;
    } finally {
      body.destroy();
    }
  }

  private async complete(uploadId: string): Promise<void> {
    const parts = [...this.etags].sort(([a], [b]) => a - b).map(([PartNumber, ETag]) => ({ PartNumber, ETag }));
    const retried = this.completeSent;
    this.completeSent = true;
    try {
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.target.bucket,
          Key: this.target.key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
        }),
        { abortSignal: this.signal },
      );
    } catch (error) {
      // A Complete whose answer was lost may have worked: the retry then finds no such upload.
      if (retried && classifyS3Error(error).code === 'NoSuchUpload' && (await this.objectIsWhole())) return;
      throw error;
    }
  }

  private async objectIsWhole(): Promise<boolean> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.target.bucket, Key: this.target.key }), {
        abortSignal: this.signal,
      });
      return head.ContentLength === this.target.bytes;
    } catch {
      return false;
    }
  }
}
