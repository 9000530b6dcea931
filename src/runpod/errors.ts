// The runtime's own error codes: what can go wrong in taking, running and posting a job, whatever
// the handler does. A handler's codes pass through unchanged (formatError).
import { codedErrors } from '../lib/errors';

export const RUNPOD_ERROR_CODES = [
  'INVALID_INPUT', // the job (or a local API request) is malformed; `details.field` names the field
  'OUTPUT_TOO_LARGE', // the result exceeds what RunPod accepts
  'TIMEOUT', // the job's deadline passed, or shutdown ran out of grace
  'CANCELLED', // RunPod or the local API cancelled the job
  'CONFIG_INVALID', // a setting or command-line flag is wrong
  'INTERNAL', // a bug: anything not converted at a module edge
] as const;

export type RunpodErrorCode = (typeof RUNPOD_ERROR_CODES)[number];

export const runpodError = codedErrors(RUNPOD_ERROR_CODES);
