// S3/R2 access shared by inputs (s3:// URLs) and outputs (uploads): credentials, one client
// configuration (R2-safe checksums, path style), and coded errors.
export { bucketFromConfig, bucketFromS3Config, type BucketCredentials, type S3ConfigInput } from './credentials';
export { createS3Client, type S3ClientFactory } from './client';
export { classifyS3Error, describeS3Failure } from './errors';
