// Where outputs go: the worker's BUCKET_* variables, or a job's own `s3Config` (RunPod's shape).
import type { BucketConfig } from '../config';
import { WorkerError } from '../lib/errors';

export interface BucketCredentials {
  /** S3-compatible endpoint without the bucket (R2: https://<account>.r2.cloudflarestorage.com). Absent = AWS. */
  endpointUrl?: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
  /** Signing region; R2 wants `auto`. Default `auto`. */
  region?: string;
}

/** RunPod's per-job override, as it arrives in the job (`job.s3Config`). */
export interface S3ConfigInput {
  accessId: string;
  accessSecret: string;
  bucketName: string;
  endpointUrl: string;
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
  return { endpoint: url.toString().replace(/\/$/, ''), bucketInPath: segments[0] };
}

/** The worker's bucket, or undefined when none is configured. Half a configuration is an error. */
export function bucketFromConfig(c: BucketConfig): BucketCredentials | undefined {
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
    throw new WorkerError('CONFIG_INVALID', `The output bucket is only partly configured: set ${missing.join(', ')}, or unset all BUCKET_* variables`, {
      details: { variables: missing },
    });
  }
  return {
    endpointUrl: split?.endpoint,
    accessKeyId: c.accessKeyId as string,
    secretAccessKey: c.secretAccessKey as string,
    bucket: bucket as string,
    region: c.region,
  };
}

/** A job's `s3Config`; the caller validates presence of the four fields (the job schema). */
export function bucketFromS3Config(s3Config: S3ConfigInput, region = 'auto'): BucketCredentials {
  const { endpoint, bucketInPath } = splitEndpoint(s3Config.endpointUrl);
  const bucket = s3Config.bucketName || bucketInPath;
  if (!bucket || !s3Config.accessId || !s3Config.accessSecret) {
    throw new WorkerError('INVALID_INPUT', 's3Config needs accessId, accessSecret, bucketName and endpointUrl', {
      details: { field: 's3Config' },
    });
  }
  return { endpointUrl: endpoint, accessKeyId: s3Config.accessId, secretAccessKey: s3Config.accessSecret, bucket, region };
}
