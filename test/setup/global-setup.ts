// Starts what the tests need beyond npm packages. Areas add their services here.
// The S3 server must start: if it cannot, this throws and the whole run fails loudly.
import { S3_ENV, startS3Server, type RunningS3Server } from './s3-server';

declare global {
  var __S3_TEST_SERVER__: RunningS3Server | undefined;
}

export default async function globalSetup(): Promise<void> {
  const server = await startS3Server();
  globalThis.__S3_TEST_SERVER__ = server;
  // Jest's test workers are forked after this runs and inherit these.
  for (const [field, name] of Object.entries(S3_ENV)) process.env[name] = server[field as keyof typeof S3_ENV];
}
