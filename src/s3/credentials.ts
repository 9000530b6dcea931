// Where outputs go: the worker's BUCKET_* variables, or a job's own `s3Config` (RunPod's shape).
import type { LookupFunction } from 'node:net';
import { z } from 'zod';
import { s3Error } from './errors';

export interface BucketCredentials {
  /** S3-compatible endpoint without the bucket (R2: https://<account>.r2.cloudflarestorage.com). Absent = AWS. */
  endpointUrl?: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
  /** Signing region; R2 wants `auto`. Default `auto`. */
  region?: string;
  /**
   * How the client's sockets resolve the endpoint's host. A job's bucket gets the address guard's
   * lookup (endpoint-guard.ts), so every connection goes to an address checked at connect time;
   * the worker's own bucket (the operator's) uses the system resolver.
   */
  lookup?: LookupFunction;
}

/** The worker's own bucket as configured (BUCKET_* variables); any part may be missing. */
export interface WorkerBucketSettings {
  readonly endpointUrl: string | undefined;
  readonly accessKeyId: string | undefined;
  readonly secretAccessKey: string | undefined;
  readonly name: string | undefined;
  readonly region: string;
}

const requiredString = (what: string) =>
  z.string({ error: (issue) => (issue.input === undefined ? 'is required' : `must be a string (${what})`) });

/**
 * RunPod's per-job bucket, as it arrives beside the input (`job.s3Config`): the one declaration of
 * its shape. Unknown keys are ignored (RunPod may add some); values are never echoed in errors.
 */
export const S3ConfigSchema = z.object({
  accessId: requiredString('the access key id').min(1, 'must not be empty'),
  accessSecret: requiredString('the secret access key').min(1, 'must not be empty'),
  // May be empty when the bucket is the path of endpointUrl (RunPod's documented form).
  bucketName: requiredString('the bucket name').regex(/^[A-Za-z0-9._-]*$/, 'must be a bucket name (letters, digits, ".", "-", "_")'),
  endpointUrl: requiredString('an https:// URL')
    .pipe(z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }))
    .refine((url) => !/^[a-z]+:\/\/[^/]*@/i.test(url), 'must not carry user:password@ (send the keys as accessId and accessSecret)'),
});

export type S3ConfigInput = z.infer<typeof S3ConfigSchema>;

/** Validates a job's `s3Config`; INVALID_INPUT names every bad field (`s3Config.endpointUrl: …`). */
export function parseS3Config(raw: unknown): S3ConfigInput {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw s3Error('INVALID_INPUT', 's3Config: must be an object with accessId, accessSecret, bucketName and endpointUrl', {
      details: { fields: ['s3Config'] },
    });
  }
  const parsed = S3ConfigSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const fields = parsed.error.issues.map((i) => ['s3Config', ...i.path].join('.'));
  const message = parsed.error.issues.map((i, n) => `${fields[n]}: ${i.message}`).join('; ');
  throw s3Error('INVALID_INPUT', message, { details: { fields } });
}

/**
 * RunPod's docs say BUCKET_ENDPOINT_URL "should include your bucket name"
 * (https://<account>.r2.cloudflarestorage.com/<bucket>). We accept both forms: an explicit
 * bucket name wins; otherwise the first path segment of the endpoint is the bucket.
 */
function splitEndpoint(endpointUrl: string): { endpoint: string; bucketInPath: string | undefined } {
  const url = new URL(endpointUrl);
  const segments = url.pathname.split('/').filter(Boolean);
  url.pathname = '/';
  url.search = '';
  url.hash = '';
  return { endpoint: url.toString().replace(/\/$/, ''), bucketInPath: segments[0] };
}

/** The worker's bucket, or undefined when none is configured. Half a configuration is an error. */
export function bucketFromConfig(c: WorkerBucketSettings): BucketCredentials | undefined {
  const given = {
    BUCKET_ENDPOINT_URL: c.endpointUrl,
    BUCKET_ACCESS_KEY_ID: c.accessKeyId,
    BUCKET_SECRET_ACCESS_KEY: c.secretAccessKey,
  };
  const set = Object.entries(given).filter(([, v]) => v !== undefined);
  if (set.length === 0 && c.name === undefined) return undefined;
  const split = c.endpointUrl ? splitEndpoint(c.endpointUrl) : undefined;
  const bucket = c.name ?? split?.bucketInPath;
  const missing = Object.entries(given)
    .filter(([, v]) => v === undefined)
    .map(([k]) => k);
  if (bucket === undefined) missing.push('BUCKET_NAME (or a bucket as the path of BUCKET_ENDPOINT_URL)');
  if (missing.length > 0) {
    throw s3Error(
      'CONFIG_INVALID',
      `The output bucket is only partly configured: set ${missing.join(', ')}, or unset all BUCKET_* variables`,
      {
        details: { variables: missing },
      },
    );
  }
  return {
    endpointUrl: split?.endpoint,
    accessKeyId: c.accessKeyId as string,
    secretAccessKey: c.secretAccessKey as string,
    bucket: bucket as string,
    region: c.region,
  };
}

/** A job's validated `s3Config` (parseS3Config) as credentials; the bucket may be the endpoint's path. */
export function bucketFromS3Config(s3Config: S3ConfigInput, region = 'auto'): BucketCredentials {
  const { endpoint, bucketInPath } = splitEndpoint(s3Config.endpointUrl);
  const bucket = s3Config.bucketName || bucketInPath;
  if (!bucket) {
    throw s3Error('INVALID_INPUT', 's3Config.bucketName: is empty and endpointUrl has no bucket as its path; set bucketName', {
      details: { fields: ['s3Config.bucketName'] },
    });
  }
  return { endpointUrl: endpoint, accessKeyId: s3Config.accessId, secretAccessKey: s3Config.accessSecret, bucket, region };
}
