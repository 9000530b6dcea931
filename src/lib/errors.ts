// One error class for the whole worker. Callers branch on `code`, never on message text
// (as with undici's coded errors; a code that is not retryable plays BullMQ's UnrecoverableError).

export const ERROR_CODES = [
  'INVALID_INPUT', // the job input is malformed; `details.field` names the field
  'INPUT_FETCH_FAILED', // an input URL/S3 object could not be read
  'MODEL_MISSING', // the image lacks a model file the variant needs
  'WORKFLOW_REJECTED', // ComfyUI refused the prompt (validation, missing node)
  'COMFY_UNAVAILABLE', // ComfyUI did not start or is unreachable
  'COMFY_CRASHED', // ComfyUI died while the job ran
  'OUT_OF_MEMORY', // CUDA / torch out of memory
  'EXECUTION_FAILED', // a node raised during execution
  'OUTPUT_MISSING', // the workflow finished but wrote no video
  'OUTPUT_TOO_LARGE', // no bucket and the result exceeds RunPod's payload cap
  'UPLOAD_FAILED', // the MP4 could not be stored
  'TIMEOUT', // the job's deadline passed
  'CANCELLED', // RunPod or the local API cancelled the job
  'CONFIG_INVALID', // an environment variable is wrong
  'INTERNAL', // a bug: anything not converted at a module edge
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface WorkerErrorOptions {
  cause?: unknown;
  /** Worth another attempt (network blips, 5xx). Default false. */
  retryable?: boolean;
  /** Structured pointer at the fault: a field, node id, input name, HTTP status... */
  details?: Record<string, unknown>;
}

export class WorkerError extends Error {
  override readonly name = 'WorkerError';
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: WorkerErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details ?? {};
  }
}

export function isWorkerError(err: unknown, code?: ErrorCode): err is WorkerError {
  return err instanceof WorkerError && (code === undefined || err.code === code);
}

/** Wraps anything thrown into a WorkerError; an existing one is returned unchanged. */
export function toWorkerError(err: unknown, fallback: ErrorCode = 'INTERNAL'): WorkerError {
  if (err instanceof WorkerError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new WorkerError(fallback, message, { cause: err });
}

/** The one place the public `CODE: message` form is made. */
export function formatError(err: unknown): string {
  const e = toWorkerError(err);
  return `${e.code}: ${e.message}`;
}
