// One error class for the whole worker. Callers branch on `code`, never on message text
// (as with undici's coded errors; a code that is not retryable plays BullMQ's UnrecoverableError).
// The codes are not listed here: each module declares its own (in its errors.ts) and makes its
// errors with `codedErrors`, so a module cannot throw a code it does not declare and this file
// knows no application. The one code every module shares is
// INTERNAL: a bug, anything not converted at a module edge.

export const INTERNAL = 'INTERNAL';

export interface WorkerErrorOptions {
  cause?: unknown;
  /** Worth another attempt (network blips, 5xx). Default false. */
  retryable?: boolean;
  /** Structured pointer at the fault: a field, node id, input name, HTTP status... */
  details?: Record<string, unknown>;
}

export class WorkerError<C extends string = string> extends Error {
  override readonly name = 'WorkerError';
  readonly code: C;
  readonly retryable: boolean;
  readonly details: Record<string, unknown>;

  constructor(code: C, message: string, options: WorkerErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details ?? {};
  }
}

/** A module's maker of WorkerErrors, typed to the module's own codes. */
export type CodedError<C extends string> = (code: C, message: string, options?: WorkerErrorOptions) => WorkerError<C>;

/** `codedErrors(MY_CODES)`: the module's maker; the list only fixes the type. */
export function codedErrors<C extends string>(_codes: readonly C[]): CodedError<C> {
  return (code, message, options) => new WorkerError(code, message, options);
}

export function isWorkerError<C extends string = string>(err: unknown, code?: C): err is WorkerError<C> {
  return err instanceof WorkerError && (code === undefined || err.code === code);
}

/** Wraps anything thrown into a WorkerError; an existing one is returned unchanged. */
export function toWorkerError(err: unknown, fallback: string = INTERNAL): WorkerError {
  if (err instanceof WorkerError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new WorkerError(fallback, message, { cause: err });
}

/** The one place the public `CODE: message` form is made. */
export function formatError(err: unknown): string {
  const e = toWorkerError(err);
  return `${e.code}: ${e.message}`;
}
