// Storage's error codes: storing a job's videos and saying where they are.
import { codedErrors } from '../lib/errors';

export const STORAGE_ERROR_CODES = [
  'OUTPUT_MISSING', // the video to store is not there, or empty
  'OUTPUT_TOO_LARGE', // no bucket and the result exceeds what can be returned inline
  'UPLOAD_FAILED', // the MP4 could not be stored
  'INTERNAL', // a bug: anything not converted at a module edge
] as const;

export type StorageErrorCode = (typeof STORAGE_ERROR_CODES)[number];

export const storageError = codedErrors(STORAGE_ERROR_CODES);
