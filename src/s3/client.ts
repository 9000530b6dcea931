// One place that builds S3 clients, so every client gets the settings R2 and other
// S3-compatibles need (path-style addressing, checksums only where required), per-request timeouts, the
// endpoint guard's lookup for a job's bucket, and our logger for the SDK's own lines.
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { S3Client } from '@aws-sdk/client-s3';
import { silentLogger, type Logger } from '../lib/logger';
import type { BucketCredentials } from './credentials';
import { sdkLogger } from './sdk-logger';

export type S3ClientFactory = (creds: BucketCredentials) => S3Client;

export interface S3Timeouts {
  /** Until the TCP (and TLS) connection is up. Default 10 s. */
  connectMs: number;
  /**
   * Longest silence on a socket, either way: no byte of the body taken, no byte of the answer.
   * This is what cuts a server that accepts the connection and never answers. When the server
   * stops reading the body, Node lets a stalled write run one more period first: twice this.
   * Default 15 s, so that three such attempts in a row (outage-retry.ts) end within 2 minutes.
   */
  idleMs: number;
}

export const DEFAULT_S3_TIMEOUTS: S3Timeouts = { connectMs: 10_000, idleMs: 15_000 };

export interface S3ClientSettings {
  timeouts?: Partial<S3Timeouts>;
  /** Where the SDK's own log lines go (as JSON). Default: nowhere. */
  logger?: Logger;
}

export function createS3Client(creds: BucketCredentials, settings: S3ClientSettings = {}): S3Client {
  const timeouts = { ...DEFAULT_S3_TIMEOUTS, ...settings.timeouts };
  const logger = sdkLogger(settings.logger ?? silentLogger);
  // Agents passed as instances are used for every request; passed as options, the SDK would
  // make a fresh agent (without the guarded lookup) for each "Expect: 100-continue" PUT.
  const agentOptions = { keepAlive: true, maxSockets: 50, ...(creds.lookup ? { lookup: creds.lookup } : {}) };
  return new S3Client({
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
    // Retries are ours (src/storage/outage-retry.ts, src/lib/retry.ts): attempts, backoff and logging in one place.
    maxAttempts: 1,
    logger,
    requestHandler: {
      connectionTimeout: timeouts.connectMs,
      socketTimeout: timeouts.idleMs,
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new HttpsAgent(agentOptions),
      logger,
    },
  });
}

/** A factory whose clients all share `settings` (handler/ builds one from the config). */
export function s3ClientFactory(settings: S3ClientSettings): S3ClientFactory {
  return (creds) => createS3Client(creds, settings);
}
