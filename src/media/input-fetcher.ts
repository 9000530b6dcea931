// Turns a job's `reference_image` / `pose_video` string into a checked file in the job's dir.
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { isWorkerError, WorkerError } from '../lib/errors';
import type { Logger } from '../lib/logger';
import { retry } from '../lib/retry';
import type { BucketCredentials } from '../s3';
import { createS3Client, type S3ClientFactory } from '../s3';
import { systemLookup, type Lookup } from './address-guard';
import { dataSource } from './data-source';
import { formatSeconds, invalidInput, type InputField } from './errors';
import { defaultFetch, HttpSource, type FetchLike, type HttpTimeouts } from './http-source';
import type { InputSource } from './input-source';
import type { JobFiles } from './job-files';
import { checkImage, checkVideo, type ImageInfo, type MediaLimits, type InputVideoInfo } from './media-limits';
import { s3Source } from './s3-source';
import { isAccepted, sniffMediaType, SNIFF_BYTES } from './sniff';

export interface FetchedInput {
  field: InputField;
  /** The file in the job's dir, named `<field><ext>`. */
  path: string;
  bytes: number;
  kind: 'image' | 'video';
  mime: string;
  /** With the dot: `.png`, `.mp4`… */
  ext: string;
  /** What the content check found: the image's size, or the video's stream, size, frames and length. */
  media: ImageInfo | InputVideoInfo;
}

export interface InputFetcherOptions {
  maxBytes: number;
  allowPrivateUrls: boolean;
  logger: Logger;
  /** Default: undici's fetch (it must accept an undici 8 `dispatcher`). */
  fetch?: FetchLike;
  /** DNS seam. Default: every address from the system resolver. */
  lookup?: Lookup;
  s3?: S3ClientFactory;
  timeouts?: HttpTimeouts;
  /** Addresses allowed although private (an allowlist); the refusal of every other one stays on. */
  allowAddresses?: readonly string[];
  /** Default 5. */
  maxRedirects?: number;
  /** Attempts for network errors, timeouts and 5xx. Default 3. */
  attempts?: number;
  /** Backoff before the first retry. Default 500 ms. */
  retryDelayMs?: number;
  /** What an input may hold (pixels, length, frames): config's MAX_INPUT_IMAGE_* / MAX_INPUT_VIDEO_*. */
  limits: MediaLimits;
  /** ffprobe binary for pose videos. Default `ffprobe` on PATH. */
  ffprobePath?: string;
  /** Longest one ffprobe run may take. Default 60 s. */
  probeTimeoutMs?: number;
}

export interface FetchOptions {
  signal: AbortSignal;
  /** Credentials for s3:// inputs: the job's s3Config, else the worker's bucket. */
  bucket?: BucketCredentials;
  /** The job's logger (carrying its request id) instead of the fetcher's. */
  logger?: Logger;
}

const EXPECTED: Record<'image' | 'video', string> = {
  image: 'an image (PNG, JPEG or WebP)',
  video: 'a video (MP4, MOV or WebM)',
};

async function readHead(file: string): Promise<Uint8Array> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await fh.read(buf, 0, SNIFF_BYTES, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

export class InputFetcher {
  /** The schemes served, each a file of its own; the order is the order the refusal lists them in. */
  private readonly sources: readonly InputSource[];

  constructor(private readonly opts: InputFetcherOptions) {
    this.sources = [
      new HttpSource({
        fetch: opts.fetch ?? defaultFetch,
        lookup: opts.lookup ?? systemLookup,
        allowPrivateUrls: opts.allowPrivateUrls,
        allowAddresses: opts.allowAddresses ?? [],
        maxBytes: opts.maxBytes,
        maxRedirects: opts.maxRedirects ?? 5,
        timeouts: opts.timeouts ?? {},
      }),
      s3Source({ s3: opts.s3 ?? createS3Client, maxBytes: opts.maxBytes }),
      dataSource(opts.maxBytes),
    ];
  }

  async fetch(
    field: InputField,
    source: string,
    expect: 'image' | 'video',
    files: Pick<JobFiles, 'dir'>,
    opts: FetchOptions,
  ): Promise<FetchedInput> {
    const started = Date.now();
    const partial = path.join(files.dir, `${field}.part`);
    try {
      const bytes = await this.download(field, source.trim(), partial, opts);
      const type = sniffMediaType(await readHead(partial));
      if (!type || !isAccepted(type, expect)) {
        const got = type ? type.label : bytes === 0 ? 'an empty file' : 'an unrecognised file type';
        throw invalidInput(field, `must be ${EXPECTED[expect]}, got ${got}`, { reason: 'type', ...(type ? { mime: type.mime } : {}) });
      }
      // Checked before ComfyUI sees it: a header claiming 100000×100000 pixels or a cut-off video stops here.
      const media = await this.checkContent(field, partial, type.mime, expect, opts.signal);
      const final = path.join(files.dir, `${field}${type.ext}`);
      await rename(partial, final);
      (opts.logger ?? this.opts.logger).info('input fetched', { field, bytes, mime: type.mime, ...media, ms: Date.now() - started });
      return { field, path: final, bytes, kind: type.kind as 'image' | 'video', mime: type.mime, ext: type.ext, media };
    } catch (error) {
      await rm(partial, { force: true });
      if (!opts.signal.aborted) (opts.logger ?? this.opts.logger).warn('input refused or unreachable', { field, error });
      throw error;
    }
  }

  private checkContent(
    field: InputField,
    file: string,
    mime: string,
    expect: 'image' | 'video',
    signal: AbortSignal,
  ): Promise<ImageInfo | InputVideoInfo> {
    const { limits } = this.opts;
    if (expect === 'image') return checkImage(field, file, mime, limits);
    return checkVideo(field, file, limits, {
      ffprobePath: this.opts.ffprobePath ?? 'ffprobe',
      timeoutMs: this.opts.probeTimeoutMs ?? 60_000,
      signal,
    });
  }

  private async download(field: InputField, source: string, dest: string, opts: FetchOptions): Promise<number> {
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(source)?.[1]?.toLowerCase();
    const handler = this.sources.find((s) => s.accepts(scheme));
    if (!handler) {
      const forms = this.sources.flatMap((s) => s.forms);
      const listed = `${forms.slice(0, -1).join(', ')} or ${forms.at(-1)}`;
      throw invalidInput(field, `unsupported URL scheme "${scheme}:"; use ${listed}`, { reason: 'scheme' });
    }
    const request = { field, source, dest, signal: opts.signal, ...(opts.bucket ? { bucket: opts.bucket } : {}) };
    return handler.retried ? this.withRetries(() => handler.fetch(request), opts, field) : handler.fetch(request);
  }

  /**
   * Runs a download with retries. When every attempt failed, the message says so (a stall of 30 s
   * retried three times took minutes, not the 30 s the last attempt's message alone would suggest).
   */
  private async withRetries(fn: () => Promise<number>, { signal, logger }: FetchOptions, field: InputField): Promise<number> {
    const started = Date.now();
    let attempts = 0;
    try {
      return await retry(
        () => {
          attempts++;
          return fn();
        },
        {
          attempts: this.opts.attempts ?? 3,
          minDelayMs: this.opts.retryDelayMs ?? 500,
          maxDelayMs: 5_000,
          signal,
          shouldRetry: ({ error }) => isWorkerError(error) && error.retryable,
          onFailedAttempt: ({ error, attemptNumber, delayMs }) =>
            (logger ?? this.opts.logger).warn('input fetch failed, retrying', { field, attempt: attemptNumber, delayMs, error }),
        },
      );
    } catch (error) {
      if (attempts < 2 || !isWorkerError(error) || signal.aborted) throw error;
      const elapsedMs = Date.now() - started;
      throw new WorkerError(error.code, `${error.message}; gave up after ${attempts} attempts over ${formatSeconds(elapsedMs)}`, {
        retryable: error.retryable,
        cause: error.cause,
        details: { ...error.details, attempts, elapsedMs },
      });
    }
  }
}
