// What an input scheme provides: the fetcher keeps a table of these (input-fetcher.ts) and asks each
// whether it can fetch a job's string. A new scheme is one new file implementing InputSource and one
// entry in that table.
import type { BucketCredentials } from '../s3';
import type { InputField } from './errors';

export interface InputRequest {
  field: InputField;
  /** The job's string, trimmed. */
  source: string;
  /** Where the bytes go (the fetcher sniffs, checks and renames the file afterwards). */
  dest: string;
  signal: AbortSignal;
  /** Credentials for sources that need them (s3://): the job's s3Config, else the worker's bucket. */
  bucket?: BucketCredentials;
}

export interface InputSource {
  /** How users write it, for the message that lists what is accepted: `https://`, `a data: URI`. */
  readonly forms: readonly string[];
  /** Worth retrying on a retryable failure (network sources); a local decode is not. */
  readonly retried: boolean;
  /** Can it fetch a string of this scheme? Lower-case, without the colon; undefined for none. */
  accepts(scheme: string | undefined): boolean;
  /** Writes the input to `dest`; returns its size in bytes. Throws coded errors naming the field. */
  fetch(request: InputRequest): Promise<number>;
}
