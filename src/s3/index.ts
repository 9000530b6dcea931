// S3/R2 access shared by inputs (s3:// URLs) and outputs (uploads): credentials, one client
// configuration (R2-safe checksums, path style, timeouts), the guard on a job's own endpoint,
// and coded errors.
export {
  bucketFromConfig,
  bucketFromS3Config,
  parseS3Config,
  S3ConfigSchema,
  type BucketCredentials,
  type S3ConfigInput,
  type WorkerBucketSettings,
} from './credentials';
export {
  createS3Client,
  s3ClientFactory,
  DEFAULT_S3_TIMEOUTS,
  type S3ClientFactory,
  type S3ClientSettings,
  type S3Timeouts,
} from './client';
export { EndpointGuard, parseAllowedEndpoint, type EndpointPolicy } from './endpoint-guard';
export { classifyS3Error, describeS3Failure, type S3Failure } from './errors';
