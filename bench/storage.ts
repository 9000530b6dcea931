// Upload throughput of our multipart uploader vs one plain single-stream PutObject of the same
// file to the same (real, loopback) S3 server, and peak RSS while uploading.
// Run: npm run bench:storage  (BENCH_SIZE_MB=1024 by default; goals: ≥ 80 % throughput, < 200 MB RSS)
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { silentLogger } from '../src/lib/logger';
import { createS3Client } from '../src/s3';
import { PART_SIZE, QUEUE_SIZE, uploadFile } from '../src/storage/upload';
import { startS3Server } from '../test/setup/s3-server';

const sizeMb = Number(process.env.BENCH_SIZE_MB ?? 1024);
// To compare settings: BENCH_PART_MB / BENCH_QUEUE (defaults: the uploader's own).
const partSize = process.env.BENCH_PART_MB ? Number(process.env.BENCH_PART_MB) * 1024 * 1024 : PART_SIZE;
const queueSize = process.env.BENCH_QUEUE ? Number(process.env.BENCH_QUEUE) : QUEUE_SIZE;
const mb = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1);

async function makeFile(file: string, bytes: number): Promise<void> {
  const fh = await open(file, 'w');
  const block = Buffer.alloc(8 * 1024 * 1024);
  for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((i * 2654435761) >>> 0, i); // incompressible enough, cheap
  for (let written = 0; written < bytes; written += block.length) await fh.write(block, 0, Math.min(block.length, bytes - written));
  await fh.close();
}

async function main(): Promise<void> {
  const server = await startS3Server();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-storage-'));
  try {
    const bytes = sizeMb * 1024 * 1024;
    const file = path.join(dir, 'video.mp4');
    await makeFile(file, bytes);
    const creds = { endpointUrl: server.endpoint, accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey, bucket: server.bucket, region: server.region };
    const client = createS3Client(creds);
    const rssBefore = process.memoryUsage().rss;

    // Ours first, so the process's peak RSS so far belongs to it.
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    let t = performance.now();
    await uploadFile(
      client,
      { path: file, bucket: server.bucket, key: 'bench/multipart.mp4', contentType: 'video/mp4', contentDisposition: 'inline; filename="video.mp4"' },
      { logger: silentLogger, partSize, queueSize },
    );
    const oursS = (performance.now() - t) / 1000;
    clearInterval(sampler);
    const maxRss = process.resourceUsage().maxRSS * 1024;

    t = performance.now();
    await client.send(
      new PutObjectCommand({ Bucket: server.bucket, Key: 'bench/single.mp4', Body: createReadStream(file), ContentLength: bytes, ContentType: 'video/mp4' }),
    );
    const singleS = (performance.now() - t) / 1000;
    client.destroy();

    const oursMbs = sizeMb / oursS;
    const singleMbs = sizeMb / singleS;
    console.log(`file: ${sizeMb} MiB; multipart part ${mb(partSize)} MiB × queue ${queueSize}; server versitygw on loopback`);
    console.log(`multipart (ours):      ${oursS.toFixed(2)} s  ${oursMbs.toFixed(0)} MiB/s`);
    console.log(`single PutObject:      ${singleS.toFixed(2)} s  ${singleMbs.toFixed(0)} MiB/s`);
    console.log(`throughput ratio:      ${((oursMbs / singleMbs) * 100).toFixed(0)} % (goal ≥ 80 %)`);
    console.log(`RSS before upload:     ${mb(rssBefore)} MB`);
    console.log(`peak RSS while ours:   ${mb(Math.max(peak, maxRss))} MB (sampled ${mb(peak)}, maxRSS ${mb(maxRss)}; goal < 200 MB)`);
  } finally {
    await rm(dir, { recursive: true, force: true });
    await server.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
