// The job's error codes: the whole list a caller of this worker can see. Each module declares its
// own codes (src/comfy, src/media, src/storage, src/s3, src/workflow; the runtime's TIMEOUT and CANCELLED are
// among them); the job adds what only it knows and is the union of them all.
import { COMFY_ERROR_CODES } from '../comfy/errors';
import { codedErrors } from '../lib/errors';
import { MEDIA_ERROR_CODES } from '../media/errors';
import { S3_ERROR_CODES } from '../s3/errors';
import { STORAGE_ERROR_CODES } from '../storage/errors';
import { WORKFLOW_ERROR_CODES } from '../workflow/errors';

/** The codes the job itself throws. */
const JOB_OWN_ERROR_CODES = [
  'INVALID_INPUT', // the job input is malformed; `details.field` names the field
  'MODEL_MISSING', // the image lacks a model file the variant needs
  'OUTPUT_MISSING', // the workflow finished but wrote no video
  'CANCELLED', // the job was cancelled
] as const;

export const jobError = codedErrors(JOB_OWN_ERROR_CODES);

/** Every code a job's `error` can start with (README's error table documents them). */
export const JOB_ERROR_CODES = [
  ...new Set([
    ...JOB_OWN_ERROR_CODES,
    ...COMFY_ERROR_CODES,
    ...MEDIA_ERROR_CODES,
    ...STORAGE_ERROR_CODES,
    ...S3_ERROR_CODES,
    ...WORKFLOW_ERROR_CODES,
  ]),
];

export type JobErrorCode = (typeof JOB_ERROR_CODES)[number];
