// S3's error codes, and classifying AWS SDK / network failures without reading message text.
import { codedErrors } from '../lib/errors';

export const S3_ERROR_CODES = [
  'INVALID_INPUT', // a job's own bucket settings are malformed or refused; `details.fields` lists the fields (`s3Config.endpointUrl`)
  'CONFIG_INVALID', // the worker's bucket settings are wrong
] as const;

export type S3ErrorCode = (typeof S3_ERROR_CODES)[number];

export const s3Error = codedErrors(S3_ERROR_CODES);

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);
const NETWORK_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException']);
/** No answer in time (as opposed to an answer that is an error): what a hung server looks like. */
const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

export interface S3Failure {
  status: number | undefined;
  /** S3 error code (NoSuchKey, AccessDenied…) or Node error code (ECONNRESET…). */
  code: string | undefined;
  retryable: boolean;
  /** The request got no answer in time (connect or idle socket timeout). */
  timeout: boolean;
}

export function classifyS3Error(err: unknown): S3Failure {
  const e = err as { $metadata?: { httpStatusCode?: number }; name?: string; Code?: string; code?: string; cause?: unknown };
  const status = e?.$metadata?.httpStatusCode;
  const nodeCode = e?.code ?? (e?.cause as { code?: string } | undefined)?.code;
  const code = e?.Code ?? (status !== undefined ? e?.name : undefined) ?? nodeCode ?? e?.name;
  const retryable =
    (status !== undefined && (status >= 500 || status === 429)) ||
    (nodeCode !== undefined && NETWORK_CODES.has(nodeCode)) ||
    (e?.name !== undefined && NETWORK_NAMES.has(e.name));
  const timeout = status === undefined && (e?.name === 'TimeoutError' || (nodeCode !== undefined && TIMEOUT_CODES.has(nodeCode)));
  return { status, code, retryable, timeout };
}

/** "HTTP 503 SlowDown" / "ECONNRESET": a short reason for error messages, free of secrets. */
export function describeS3Failure(f: S3Failure): string {
  if (f.status !== undefined) return `HTTP ${f.status}${f.code ? ` ${f.code}` : ''}`;
  return f.code ?? 'network error';
}
