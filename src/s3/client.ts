// One place that builds S3 clients, so every client gets the settings R2 and other
// S3-compatibles need (shared/reference/platform-notes.md §2).
import { S3Client } from '@aws-sdk/client-s3';
import type { BucketCredentials } from './credentials';

export type S3ClientFactory = (creds: BucketCredentials) => S3Client;

export const createS3Client: S3ClientFactory = (creds) =>
  new S3Client({
    ...(creds.endpointUrl ? { endpoint: creds.endpointUrl } : {}),
    region: creds.region ?? 'auto',
    // Explicit: the SDK would otherwise also look at AWS_* variables and ~/.aws.
    credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey },
    // Custom endpoints take the bucket in the path (RunPod's rp_upload does the same via boto3).
    forcePathStyle: true,
    // The SDK default (WHEN_SUPPORTED) re-encodes stream bodies as aws-chunked with CRC32
    // trailers, which R2, B2 and older MinIO reject or store verbatim.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // Retries are ours (src/lib/retry.ts) so that attempts, backoff and logging are in one place.
    maxAttempts: 1,
  });
