// The coded errors of input fetching, each naming the job field at fault.
import { codedErrors, type WorkerError } from '../lib/errors';

export const MEDIA_ERROR_CODES = [
  'INVALID_INPUT', // an input is malformed, too large or not what it claims; `details.field` names it
  'INPUT_FETCH_FAILED', // an input URL/S3 object could not be read
  'INTERNAL', // a bug: anything not converted at a module edge
] as const;

export type MediaErrorCode = (typeof MEDIA_ERROR_CODES)[number];

export const mediaError = codedErrors(MEDIA_ERROR_CODES);

export type InputField = 'reference_image' | 'pose_video';

export function invalidInput(field: InputField, message: string, details: Record<string, unknown> = {}): WorkerError {
  return mediaError('INVALID_INPUT', `${field}: ${message}`, { details: { field, ...details } });
}

export function fetchFailed(
  field: InputField,
  message: string,
  opts: { retryable: boolean; cause?: unknown; details?: Record<string, unknown> },
): WorkerError {
  return mediaError('INPUT_FETCH_FAILED', `${field}: ${message}`, {
    retryable: opts.retryable,
    cause: opts.cause,
    details: { field, ...opts.details },
  });
}

export function tooLarge(field: InputField, maxBytes: number, bytes?: number): WorkerError {
  const size = bytes === undefined ? 'is larger' : `is ${bytes} bytes, larger`;
  return invalidInput(field, `${size} than the ${maxBytes}-byte limit (MAX_INPUT_BYTES); send a smaller file`, {
    maxBytes,
    ...(bytes === undefined ? {} : { bytes }),
  });
}

/** Where a URL points, for messages: origin + path, never userinfo or the query (presigned signatures). */
export function describeUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

/** "0.2 s", "9.5 s", "95 s": tenths only where they matter. */
export function formatSeconds(ms: number): string {
  return ms < 10_000 ? `${Math.round(ms / 100) / 10} s` : `${Math.round(ms / 1000)} s`;
}
