// One result envelope for every way a job can end (rp-py `run_job` / `handle_job`), and its wire text.
import { formatError, isWorkerError, WorkerError } from '../lib/errors';
import { redactText } from '../lib/redact';
import type { ResultBody } from './types';
import { pythonJsonDumps, wireBody } from './wire-json';
import { runpodError } from './errors';

/** The runpod-python protocol version whose wire format we follow; sent where rp-py sends its version. */
export const RUNPOD_PROTOCOL_VERSION = '1.12.0';

/** Python posts JSON ≤ 20 MB in practice (`/runsync` cap); larger results are rejected by RunPod. */
export const DEFAULT_MAX_RESULT_BYTES = 20 * 1024 * 1024;

export interface ErrorOrigin {
  hostname: string;
  workerId: string;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A handler's return value: objects lose `error` and `refresh_worker` into the envelope,
 * `output` is omitted when nothing else is left (rp-py pops it when it equals `{}`).
 */
export function fromReturned(value: unknown): ResultBody {
  if (!isPlainObject(value)) return { output: value };
  const { error, refresh_worker: refreshWorker, ...rest } = value;
  const body: ResultBody = {};
  if (Object.keys(rest).length > 0) body.output = rest;
  if (error) body.error = error; // rp-py: `if error_msg:` (falsy errors vanish)
  if (refreshWorker) body.stopPod = true;
  return body;
}

/** Python's class repr, so RunPod's UI shows the same `error_type` shape. */
function errorType(err: unknown): string {
  const name = err instanceof Error ? err.constructor.name || err.name : typeof err;
  return `<class '${name}'>`;
}

/** A thrown error, double-encoded as rp-py does: `{"error": "<JSON string>"}`, the inner text as Python's
 * `json.dumps(error_info)` writes it (spaced separators, non-ASCII escaped). */
export function fromThrown(err: unknown, origin: ErrorOrigin): ResultBody {
  const message = isWorkerError(err) ? formatError(err) : err instanceof Error ? err.message : String(err);
  const info = {
    error_type: errorType(err),
    error_message: redactText(message),
    error_traceback: redactText(err instanceof Error ? (err.stack ?? message) : message),
    hostname: origin.hostname,
    worker_id: origin.workerId,
    runpod_version: RUNPOD_PROTOCOL_VERSION,
  };
  return { error: pythonJsonDumps(info, true) };
}

/** A stream handler that threw: rp-py's plain string, not the double-encoded form. */
export function fromStreamThrown(err: unknown): ResultBody {
  const message = err instanceof Error ? err.message : String(err);
  const stack = err instanceof Error ? (err.stack ?? '') : '';
  return { error: redactText(`handler: ${message} \ntraceback: ${stack}`) };
}

/** A failure the runtime itself reports (abandoned after abort, unserialisable or oversized output). */
export function fromRuntimeError(err: unknown): ResultBody {
  return { error: formatError(err) };
}

/**
 * Serialises a body for the wire, as rp-py's bytes (wire-json.ts). Output that JSON cannot carry,
 * or that exceeds the size cap, is replaced by an error body rather than dropped (rp-py loses such results).
 */
export function serialiseResult(body: ResultBody, maxBytes: number): { text: string; body: ResultBody } {
  let text: string | undefined;
  let problem: WorkerError | undefined;
  try {
    text = wireBody(body);
  } catch (err) {
    problem = runpodError('INTERNAL', `the job's result cannot be encoded as JSON (${(err as Error).message}); return plain data`, {
      cause: err,
    });
  }
  if (text !== undefined) {
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes <= maxBytes) return { text, body };
    problem = runpodError(
      'OUTPUT_TOO_LARGE',
      `the job's result is ${bytes} bytes, over RunPod's ${maxBytes}-byte limit; store large outputs in a bucket and return URLs`,
      { details: { bytes, maxBytes } },
    );
  }
  const replacement: ResultBody = { ...fromRuntimeError(problem), ...(body.stopPod ? { stopPod: true as const } : {}) };
  return { text: wireBody(replacement), body: replacement };
}
