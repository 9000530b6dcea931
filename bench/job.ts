// Per-job overhead of the worker beyond inference, and the cold-start overlap, on the real bundle.
// Run: npm run bench:job   (BENCH_OUTPUT_MB=50, BENCH_JOBS=5, BENCH_POSE=small|big)
//
// 1. Overhead: the production bundle takes jobs from the fake RunPod job API; the stand-in ComfyUI
//    does no inference (it copies a prepared ~50 MB MP4 as its output); the worker fetches the inputs
//    from a loopback server, uploads them to ComfyUI, queues, collects, probes and uploads the MP4 to
//    the real S3 server (versitygw) and posts the result. Overhead = latency − reported inference.
//    Floor, in the same run: a plain download of the same inputs + one plain PutObject of the same
//    output bytes. Goal: overhead ≤ 1.2 × floor.
// 2. Cold start: a fresh worker whose ComfyUI takes ~3 s to boot gets a job whose inputs take ~2 s to
//    arrive. Goal: latency ≈ max(boot, fetch), not their sum.
import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { startFakeJobApi, type FakeJobApi } from '../test/fakes/runpod-job-api';
import { startS3Server, type RunningS3Server } from '../test/setup/s3-server';
import {
  baseEnv,
  ffmpegPath,
  prepareProduct,
  startInputServer,
  startWorker,
  workerDirs,
  type InputServer,
  type Product,
  type WorkerProcess,
} from '../test/e2e/harness';

const run = promisify(execFile);
const OUTPUT_MB = Number(process.env.BENCH_OUTPUT_MB ?? 50);
const JOBS = Number(process.env.BENCH_JOBS ?? 5);
const BIG_POSE = process.env.BENCH_POSE === 'big';
const BOOT_MS = 3000;
const SLOW_INPUT_MS = 2000;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const ms = (x: number): string => `${Math.round(x)} ms`;

/** A real H.264 MP4 of about `mb` MB (720p noise at a low QP: incompressible, like a sharp render). */
async function makeBigMp4(file: string, mb: number): Promise<void> {
  const frames = Math.max(2, Math.round(mb * 0.84)); // ~1.2 MB a frame at these settings
  await run(ffmpegPath, ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=16', '-vf', 'noise=alls=60:allf=t+u', '-frames:v', String(frames), '-c:v', 'libx264', '-preset', 'ultrafast', '-qp', '8', '-pix_fmt', 'yuv420p', '-movflags', '+faststart', file]);
}

function productionEnv(api: FakeJobApi, s3: RunningS3Server): Record<string, string> {
  return {
    RUNPOD_WEBHOOK_GET_JOB: api.templates.jobTakeUrl,
    RUNPOD_WEBHOOK_POST_OUTPUT: api.templates.jobDoneUrl,
    RUNPOD_WEBHOOK_POST_STREAM: api.templates.jobStreamUrl,
    RUNPOD_AI_API_KEY: 'bench-key',
    RUNPOD_POD_ID: 'bench-pod',
    BUCKET_ENDPOINT_URL: s3.endpoint,
    BUCKET_ACCESS_KEY_ID: s3.accessKeyId,
    BUCKET_SECRET_ACCESS_KEY: s3.secretAccessKey,
    BUCKET_NAME: s3.bucket,
    BUCKET_REGION: s3.region,
    RUNPOD_LOG_LEVEL: 'WARN',
  };
}

const isFinal = (body: unknown): boolean => (body as { status?: string } | undefined)?.status !== 'IN_PROGRESS';

interface JobRun {
  latencyMs: number;
  timings: Record<string, number>;
}

async function runJob(api: FakeJobApi, id: string, input: unknown): Promise<JobRun> {
  const started = performance.now();
  api.addJobs({ id, input });
  const done = await api.waitFor((r) => r.kind === 'done' && r.jobId === id && isFinal(r.body), 120_000);
  const body = done.body as { output?: { timings_ms: Record<string, number> }; error?: string };
  if (!body.output) throw new Error(`bench job ${id} failed: ${body.error}`);
  return { latencyMs: done.at - started, timings: body.output.timings_ms };
}

function jobInput(inputs: InputServer, pose: string): Record<string, unknown> {
  return { reference_image: `${inputs.url}/person.png`, pose_video: `${inputs.url}/${pose}`, width: 256, height: 256, num_frames: 17, seed: 1 };
}

async function overhead(product: Product, s3: RunningS3Server, bigMp4: string, scratch: string): Promise<void> {
  const poseName = BIG_POSE ? 'big.mp4' : 'dance.mp4';
  const inputs = await startInputServer({ 'person.png': product.fixtures.png, 'dance.mp4': product.fixtures.mp4, 'big.mp4': bigMp4 });
  const api = await startFakeJobApi({ holdMs: 60_000 });
  const dirs = workerDirs(product, 'bench', { steadydancer: { ffmpegPath, outputVideo: bigMp4 } });
  let worker: WorkerProcess | undefined;
  try {
    worker = startWorker(product.bundle, { env: await baseEnv(product, dirs, productionEnv(api, s3)) });
    await runJob(api, 'warm-up', jobInput(inputs, poseName)); // cold start and first-use costs out
    const jobs: JobRun[] = [];
    for (let i = 0; i < JOBS; i++) jobs.push(await runJob(api, `job-${i}`, jobInput(inputs, poseName)));

    // The floor, same bytes, same servers: download the inputs (in parallel, as the job does) to disk,
    // then one plain PutObject of the output file (read from disk, as the worker must).
    const client = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
    const floors: { download: number; put: number }[] = [];
    const outputBytes = statSync(bigMp4).size;
    for (let i = 0; i < JOBS; i++) {
      const t0 = performance.now();
      await Promise.all(['person.png', poseName].map(async (name, k) => {
        const res = await fetch(`${inputs.url}/${name}`);
        await pipeline(Readable.fromWeb(res.body as never), createWriteStream(path.join(scratch, `floor-${k}`)));
      }));
      const t1 = performance.now();
      await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `floor/${i}.mp4`, Body: createReadStream(bigMp4), ContentLength: outputBytes, ContentType: 'video/mp4' }));
      floors.push({ download: t1 - t0, put: performance.now() - t1 });
    }
    client.destroy();

    const over = jobs.map((j) => j.latencyMs - (j.timings.inference ?? 0));
    const floor = floors.map((f) => f.download + f.put);
    const part = (k: string): string => ms(median(jobs.map((j) => j.timings[k] ?? 0)));
    console.log(`\n== per-job overhead beyond inference (${JOBS} warm jobs, medians) ==`);
    console.log(`output MP4: ${(statSync(bigMp4).size / 1024 / 1024).toFixed(1)} MB; pose input: ${(statSync(BIG_POSE ? bigMp4 : product.fixtures.mp4).size / 1024 / 1024).toFixed(2)} MB`);
    console.log(`job latency (take → result posted):   ${ms(median(jobs.map((j) => j.latencyMs)))}`);
    console.log(`  worker timings: inputs ${part('inputs')}, queue ${part('queue')}, inference ${part('inference')}, upload ${part('upload')}, total ${part('total')}`);
    console.log(`overhead beyond inference:            ${ms(median(over))}`);
    console.log(`raw I/O floor (download + PutObject): ${ms(median(floor))}  (download ${ms(median(floors.map((f) => f.download)))}, PutObject ${ms(median(floors.map((f) => f.put)))})`);
    const ratio = median(over) / median(floor);
    console.log(`overhead / floor: ${ratio.toFixed(2)}×  (goal ≤ 1.20×) ${ratio <= 1.2 ? 'OK' : 'ABOVE GOAL'}`);
  } finally {
    await worker?.stop();
    await api.close();
    await inputs.close();
  }
}

async function coldStart(product: Product, s3: RunningS3Server): Promise<void> {
  const inputs = await startInputServer({ 'person.png': product.fixtures.png, 'dance.mp4': product.fixtures.mp4 }, { delayMs: SLOW_INPUT_MS });
  const api = await startFakeJobApi({ holdMs: 60_000 });
  const dirs = workerDirs(product, 'bench-cold', { bootDelayMs: BOOT_MS });
  let worker: WorkerProcess | undefined;
  try {
    // The job waits in the queue, as on a cold start: the worker takes it the moment it asks.
    api.addJobs({ id: 'cold', input: jobInput(inputs, 'dance.mp4') });
    const spawned = performance.now();
    const spawnedWall = Date.now();
    worker = startWorker(product.bundle, { env: await baseEnv(product, dirs, { ...productionEnv(api, s3), RUNPOD_LOG_LEVEL: 'INFO' }) });
    const w = worker;
    const [, done] = await Promise.all([
      w.waitForOutput('"ComfyUI is ready"', 60_000),
      api.waitFor((r) => r.kind === 'done' && r.jobId === 'cold' && isFinal(r.body), 60_000),
    ]);
    const ready = readyAfter(w, spawnedWall);
    const body = done.body as { output?: { timings_ms: Record<string, number> }; error?: string };
    if (!body.output) throw new Error(`cold job failed: ${body.error}`);
    const latency = done.at - spawned;
    const fetch = body.output.timings_ms.inputs ?? 0;
    console.log(`\n== cold start: ComfyUI boot overlapped with the input fetch ==`);
    console.log(`ComfyUI boot (spawn → ready): ${ms(ready)}   (stand-in boot delay ${BOOT_MS} ms)`);
    console.log(`input fetch (job's timings):  ${ms(fetch)}   (origin delay ${SLOW_INPUT_MS} ms)`);
    console.log(`job latency (spawn → result): ${ms(latency)}`);
    console.log(`max(boot, fetch) = ${ms(Math.max(ready, fetch))}; boot + fetch = ${ms(ready + fetch)}; latency − max = ${ms(latency - Math.max(ready, fetch))}`);
  } finally {
    await worker?.stop();
    await api.close();
    await inputs.close();
  }
}

/** Milliseconds from spawn to the "ComfyUI is ready" log line, by the line's own timestamp. */
function readyAfter(w: WorkerProcess, spawnedWall: number): number {
  const line = w.output().split('\n').find((l) => l.includes('"ComfyUI is ready"'));
  if (!line) throw new Error('no "ComfyUI is ready" line in the worker output');
  return Date.parse((JSON.parse(line) as { time: string }).time) - spawnedWall;
}

async function main(): Promise<void> {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'bench-job-'));
  const [s3, product] = await Promise.all([startS3Server(), prepareProduct()]);
  try {
    const bigMp4 = path.join(scratch, 'big.mp4');
    await makeBigMp4(bigMp4, OUTPUT_MB);
    await overhead(product, s3, bigMp4, scratch);
    await coldStart(product, s3);
  } finally {
    await s3.stop();
    product.close();
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
