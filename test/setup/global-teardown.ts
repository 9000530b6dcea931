// Stops what global-setup.ts started.
export default async function globalTeardown(): Promise<void> {
  await globalThis.__S3_TEST_SERVER__?.stop();
  globalThis.__S3_TEST_SERVER__ = undefined;
}
