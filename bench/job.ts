// Per-job overhead of the worker beyond inference, and the cold-start overlap, on the real bundle.
// Run: npm run bench:job   (BENCH_SAMPLES=5, BENCH_OUTPUT_MB=48,96, BENCH_POSE=small|big, BENCH_PARTS=overhead,cold)
//
// 1. Overhead: the production bundle takes jobs from the fake RunPod job API; the stand-in ComfyUI
//    does no inference (it copies a prepared MP4 as its output); the worker fetches the inputs from a
//    loopback server, hands them to ComfyUI, queues, collects, probes and uploads the MP4 to the real S3
//    server (versitygw) and posts the result. Inference = ComfyUI's own execution time (its
//    execution_start → execution_success timestamps, which the worker reports as timings_ms.inference);
//    overhead = latency − inference, i.e. everything the worker and the job API add. One arm per output
//    size: below and above the 64 MiB multipart threshold.
//    Floor, alternating with the jobs, sample by sample: a plain download of the same inputs + one plain
//    PutObject of the same output bytes. Goal: overhead ≤ 1.2 × floor.
// 2. Cold start: a fresh worker whose ComfyUI takes ~3 s to boot gets a job whose inputs take ~2 s to
//    arrive. Goal: latency ≈ max(boot, fetch), not their sum.
// Figures are printed and written to bench/results/job.json.
import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DEFAULT_UPLOAD_POLICY } from '../src/storage/upload';

const MULTIPART_THRESHOLD = DEFAULT_UPLOAD_POLICY.multipartThreshold;
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
import { lavfiInput } from '../test/media/fixtures';

const run = promisify(execFile);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 5);
// 48 MB goes out in one PutObject; 96 MB is above MULTIPART_THRESHOLD (64 MiB = 67.1 MB) and goes multipart
const OUTPUT_MB = (process.env.BENCH_OUTPUT_MB ?? '48,96').split(',').map(Number);
const PARTS = new Set((process.env.BENCH_PARTS ?? 'overhead,cold').split(','));
const RESULTS = path.resolve('bench/results/job.json');
const BIG_POSE = process.env.BENCH_POSE === 'big';
const BOOT_MS = 3000;
const SLOW_INPUT_MS = 2000;

const median = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const ms = (x: number): string => `${Math.round(x)} ms`;

/** A real H.264 MP4 of about `mb` MB (720p noise at a low QP: incompressible, like a sharp render). */
async function makeBigMp4(file: string, mb: number): Promise<void> {
  const frames = Math.max(2, Math.round(mb * 0.84)); // ~1.2 MB a frame at these settings
  await run(ffmpegPath, [
    ...lavfiInput('testsrc2=size=1280x720:rate=16'),
    '-vf',
    'noise=alls=60:allf=t+u',
    '-frames:v',
    String(frames),
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    '-qp',
    '8',
    '-pix_fmt',
    'yuv420p',
    '-movflags',
    '+faststart',
    file,
  ]);
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
  return {
    reference_image: `${inputs.url}/person.png`,
    pose_video: `${inputs.url}/${pose}`,
    width: 256,
    height: 256,
    num_frames: 17,
    seed: 1,
  };
}

/** One sample of each arm: the job through the worker, and the raw I/O floor for the same bytes. */
interface Sample {
  latencyMs: number;
  /** ComfyUI's own execution time, as the worker reports it. */
  inferenceMs: number;
  overheadMs: number;
  inputsMs: number;
  queueMs: number;
  uploadMs: number;
  /** Inside the job but in none of its timings: POST /prompt, ComfyUI's queue, completion detection, /history. */
  comfyRoundTripMs: number;
  /** Outside the job: the job API's take and result post. */
  jobApiMs: number;
  floorDownloadMs: number;
  floorPutMs: number;
}

interface ArmResult {
  outputBytes: number;
  multipart: boolean;
  poseBytes: number;
  samples: Sample[];
  medians: Record<keyof Sample, number>;
  overheadOverFloor: number;
}

async function floorSample(
  inputs: InputServer,
  s3: RunningS3Server,
  client: S3Client,
  poseName: string,
  output: string,
  scratch: string,
  key: string,
): Promise<{ download: number; put: number }> {
  const t0 = performance.now();
  await Promise.all(
    ['person.png', poseName].map(async (name, k) => {
      const res = await fetch(`${inputs.url}/${name}`);
      await pipeline(Readable.fromWeb(res.body as never), createWriteStream(path.join(scratch, `floor-${k}`)));
    }),
  );
  const t1 = performance.now();
  await client.send(
    new PutObjectCommand({
      Bucket: s3.bucket,
      Key: key,
      Body: createReadStream(output),
      ContentLength: statSync(output).size,
      ContentType: 'video/mp4',
    }),
  );
  return { download: t1 - t0, put: performance.now() - t1 };
}

async function overhead(product: Product, s3: RunningS3Server, output: string, bigPose: string, scratch: string): Promise<ArmResult> {
  const poseName = BIG_POSE ? 'big.mp4' : 'dance.mp4';
  const inputs = await startInputServer({ 'person.png': product.fixtures.png, 'dance.mp4': product.fixtures.mp4, 'big.mp4': bigPose });
  const api = await startFakeJobApi({ holdMs: 60_000 });
  const dirs = workerDirs(product, 'bench', { steadydancer: { ffmpegPath, outputVideo: output } });
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  const outputBytes = statSync(output).size;
  let worker: WorkerProcess | undefined;
  try {
    worker = startWorker(product.bundle, { env: await baseEnv(product, dirs, productionEnv(api, s3)) });
    await runJob(api, 'warm-up', jobInput(inputs, poseName)); // cold start and first-use costs out
    await floorSample(inputs, s3, client, poseName, output, scratch, 'floor/warm-up.mp4');
    const samples: Sample[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      // alternating, so a drift of the machine (page cache, another process) touches both arms alike
      const job = await runJob(api, `job-${outputBytes}-${i}`, jobInput(inputs, poseName));
      const floor = await floorSample(inputs, s3, client, poseName, output, scratch, `floor/${i}.mp4`);
      const t = (k: string): number => job.timings[k] ?? 0;
      const r = (x: number): number => Math.round(x * 10) / 10;
      samples.push({
        latencyMs: r(job.latencyMs),
        inferenceMs: t('inference'),
        overheadMs: r(job.latencyMs - t('inference')),
        inputsMs: t('inputs'),
        queueMs: t('queue'),
        uploadMs: t('upload'),
        comfyRoundTripMs: t('total') - t('inputs') - t('queue') - t('inference') - t('upload'),
        jobApiMs: r(job.latencyMs - t('total')),
        floorDownloadMs: r(floor.download),
        floorPutMs: r(floor.put),
      });
    }
    const medians = Object.fromEntries(
      Object.keys(samples[0]!).map((k) => [k, median(samples.map((x) => x[k as keyof Sample]))]),
    ) as Record<keyof Sample, number>;
    const floorMedian = median(samples.map((x) => x.floorDownloadMs + x.floorPutMs));
    const result: ArmResult = {
      outputBytes,
      multipart: outputBytes > MULTIPART_THRESHOLD,
      poseBytes: statSync(BIG_POSE ? bigPose : product.fixtures.mp4).size,
      samples,
      medians,
      overheadOverFloor: Math.round((medians.overheadMs / floorMedian) * 100) / 100,
    };
    printArm(result, floorMedian);
    return result;
  } finally {
    client.destroy();
    await worker?.stop();
    await api.close();
    await inputs.close();
  }
}

function printArm(r: ArmResult, floorMedian: number): void {
  const m = r.medians;
  console.log(
    `\n== output ${(r.outputBytes / 1e6).toFixed(1)} MB (${r.multipart ? 'multipart' : 'one PutObject'}), pose input ${(r.poseBytes / 1e6).toFixed(2)} MB: ${SAMPLES} samples per arm, alternating, medians ==`,
  );
  console.log(`job latency (take → result posted):  ${ms(m.latencyMs)}`);
  console.log(`  inference (ComfyUI's execution):    ${ms(m.inferenceMs)}`);
  console.log(`  overhead (latency − inference):     ${ms(m.overheadMs)}`);
  console.log(
    `    inputs ${ms(m.inputsMs)}, queue ${ms(m.queueMs)}, ComfyUI round trip ${ms(m.comfyRoundTripMs)}, upload ${ms(m.uploadMs)}, job API ${ms(m.jobApiMs)}`,
  );
  console.log(
    `raw I/O floor (download + PutObject): ${ms(floorMedian)}  (download ${ms(m.floorDownloadMs)}, PutObject ${ms(m.floorPutMs)})`,
  );
  console.log(`overhead / floor: ${r.overheadOverFloor.toFixed(2)}×  (goal ≤ 1.20×) ${r.overheadOverFloor <= 1.2 ? 'OK' : 'ABOVE GOAL'}`);
}

interface ColdStart {
  bootMs: number;
  fetchMs: number;
  latencyMs: number;
  timings: Record<string, number>;
}

async function coldStart(product: Product, s3: RunningS3Server): Promise<ColdStart> {
  const inputs = await startInputServer(
    { 'person.png': product.fixtures.png, 'dance.mp4': product.fixtures.mp4 },
    { delayMs: SLOW_INPUT_MS },
  );
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
    console.log(
      `max(boot, fetch) = ${ms(Math.max(ready, fetch))}; boot + fetch = ${ms(ready + fetch)}; latency − max = ${ms(latency - Math.max(ready, fetch))}`,
    );
    console.log(
      `  worker timings: ${Object.entries(body.output.timings_ms)
        .map(([k, v]) => `${k} ${ms(v)}`)
        .join(', ')}`,
    );
    return { bootMs: ready, fetchMs: fetch, latencyMs: latency, timings: body.output.timings_ms };
  } finally {
    await worker?.stop();
    await api.close();
    await inputs.close();
  }
}

/** Milliseconds from spawn to the "ComfyUI is ready" log line, by the line's own timestamp. */
function readyAfter(w: WorkerProcess, spawnedWall: number): number {
  const line = w
    .output()
    .split('\n')
    .find((l) => l.includes('"ComfyUI is ready"'));
  if (!line) throw new Error('no "ComfyUI is ready" line in the worker output');
  return Date.parse((JSON.parse(line) as { time: string }).time) - spawnedWall;
}

async function main(): Promise<void> {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'bench-job-'));
  const [s3, product] = await Promise.all([startS3Server(), prepareProduct()]);
  try {
    const outputs: string[] = [];
    for (const mb of PARTS.has('overhead') ? OUTPUT_MB : []) {
      const file = path.join(scratch, `out-${mb}.mp4`);
      await makeBigMp4(file, mb);
      outputs.push(file);
    }
    const arms: ArmResult[] = [];
    for (const output of outputs) arms.push(await overhead(product, s3, output, outputs[0]!, scratch));
    const cold = PARTS.has('cold') ? await coldStart(product, s3) : undefined;
    mkdirSync(path.dirname(RESULTS), { recursive: true });
    writeFileSync(
      RESULTS,
      `${JSON.stringify(
        {
          bench: 'job',
          date: new Date().toISOString(),
          machine: {
            node: process.version,
            cpus: os.cpus().length,
            cpuModel: os.cpus()[0]?.model,
            memoryGiB: Math.round(os.totalmem() / 2 ** 30),
          },
          settings: {
            samples: SAMPLES,
            outputMb: OUTPUT_MB,
            pose: BIG_POSE ? 'big' : 'small',
            multipartThresholdBytes: MULTIPART_THRESHOLD,
          },
          overhead: arms,
          ...(cold ? { coldStart: { ...cold, bootDelayMs: BOOT_MS, inputDelayMs: SLOW_INPUT_MS } } : {}),
        },
        null,
        2,
      )}\n`,
    );
    console.log(`\nresults written to ${path.relative(process.cwd(), RESULTS)}`);
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
