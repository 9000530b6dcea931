// End to end, production mode: the bundle as a child process takes jobs from the fake RunPod job API,
// runs them on the stand-in ComfyUI (which renders a real MP4), uploads to the real S3 test server.
// One worker process serves every scenario in order, so each one also proves it keeps serving.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startFakeJobApi, type FakeJobApi, type RecordedRequest } from '../fakes/runpod-job-api';
import { s3TestServer } from '../setup/s3-server';
import {
  baseEnv,
  downloadAndProbe,
  filesUnder,
  isAlive,
  prepareProduct,
  startInputServer,
  startWorker,
  strayFolders,
  waitUntil,
  workerDirs,
  type InputServer,
  type Product,
  type WorkerDirs,
  type WorkerProcess,
} from './harness';

const API_KEY = 'rp-e2e-key';
const POD_ID = 'pod-e2e';
const SIZE = { width: 256, height: 320, num_frames: 17 };

let product: Product;
let inputs: InputServer;
let api: FakeJobApi;
let dirs: WorkerDirs;
let worker: WorkerProcess;
let scratch: string;

beforeAll(async () => {
  product = await prepareProduct();
  scratch = mkdtempSync(path.join(os.tmpdir(), 'sd-e2e-dl-'));
  inputs = await startInputServer({ 'person.png': product.fixtures.png, 'dance.mp4': product.fixtures.mp4 });
  // Polls held long, as RunPod does: a queued job or a stop is answered at once.
  api = await startFakeJobApi({ holdMs: 30_000 });
  dirs = workerDirs(product, 'prod');
  const s3 = s3TestServer();
  const env = await baseEnv(product, dirs, {
    RUNPOD_WEBHOOK_GET_JOB: api.templates.jobTakeUrl,
    RUNPOD_WEBHOOK_POST_OUTPUT: api.templates.jobDoneUrl,
    RUNPOD_WEBHOOK_POST_STREAM: api.templates.jobStreamUrl,
    RUNPOD_WEBHOOK_PING: api.templates.pingUrl,
    RUNPOD_AI_API_KEY: API_KEY,
    RUNPOD_POD_ID: POD_ID,
    RUNPOD_PING_INTERVAL: '200',
    // the timeout scenario waits this long; long enough for a normal job (inputs probed, real S3
    // upload) on a loaded 2-core machine, where 5 s timed out healthy jobs
    JOB_TIMEOUT_S: '15',
    BUCKET_ENDPOINT_URL: s3.endpoint,
    BUCKET_ACCESS_KEY_ID: s3.accessKeyId,
    BUCKET_SECRET_ACCESS_KEY: s3.secretAccessKey,
    BUCKET_NAME: s3.bucket,
    BUCKET_REGION: s3.region,
  });
  worker = startWorker(product.bundle, { env });
});

afterAll(async () => {
  await worker?.stop();
  await api?.close();
  await inputs?.close();
  product?.close();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

function jobInput(prompt = 'a person dancing', over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    reference_image: `${inputs.url}/person.png`,
    pose_video: `${inputs.url}/dance.mp4`,
    ...SIZE,
    seed: 42,
    prompt,
    output: { key_prefix: 'e2e/' },
    ...over,
  };
}

const isFinal = (r: RecordedRequest): boolean => r.kind === 'done' && (r.body as { status?: string } | undefined)?.status !== 'IN_PROGRESS';

/** Queues a job and resolves the body of its final post. */
async function runJob(id: string, input: unknown, timeoutMs = 15_000): Promise<Record<string, unknown>> {
  api.addJobs({ id, input });
  const done = await api.waitFor((r) => isFinal(r) && r.jobId === id, timeoutMs);
  return done.body as Record<string, unknown>;
}

function progressOf(id: string): { stage: string; percent: number; step?: number; steps?: number }[] {
  return api
    .of('done')
    .filter((r) => r.jobId === id && (r.body as { status?: string }).status === 'IN_PROGRESS')
    .map((r) => (r.body as { output: { stage: string; percent: number } }).output);
}

function expectNoLeftovers(): void {
  expect(filesUnder(dirs.workDir)).toEqual([]);
  expect(strayFolders(dirs.workDir)).toEqual([]);
}

interface Video {
  url: string;
  bucket: string;
  key: string;
  content_type: string;
  bytes: number;
  width: number;
  height: number;
  frames: number;
  fps: number;
}

async function expectGoodVideo(body: Record<string, unknown>, id: string): Promise<void> {
  expect(body.error).toBeUndefined();
  const output = body.output as { videos: Video[]; variant: string; seed: number; timings_ms: Record<string, number> };
  expect(output.variant).toBe('turbo');
  expect(output.seed).toBe(42);
  expect(Object.keys(output.timings_ms).sort()).toEqual(['inference', 'inputs', 'queue', 'total', 'upload']);
  expect(output.videos).toHaveLength(1);
  const video = output.videos[0]!;
  expect(video).toMatchObject({
    bucket: s3TestServer().bucket,
    content_type: 'video/mp4',
    width: SIZE.width,
    height: SIZE.height,
    frames: SIZE.num_frames,
    fps: 16,
  });
  expect(video.key).toMatch(new RegExp(`^e2e/${id}/.+\\.mp4$`));
  const probed = await downloadAndProbe(video.url, scratch);
  expect(probed).toMatchObject({
    codec: 'h264',
    pixFmt: 'yuv420p',
    width: SIZE.width,
    height: SIZE.height,
    frames: SIZE.num_frames,
    fps: 16,
    bytes: video.bytes,
  });
}

describe('worker bundle in production mode (fake RunPod, stand-in ComfyUI, real S3)', () => {
  it('completes a job on a cold start: the presigned URL downloads the MP4 ffprobe reads as asked', async () => {
    const body = await runJob('job-ok-1', jobInput());
    await expectGoodVideo(body, 'job-ok-1');
    // progress went to RunPod with a stage and a percent, ahead of the result
    const progress = progressOf('job-ok-1');
    expect(progress.length).toBeGreaterThan(0);
    expect(progress[0]).toEqual({ stage: 'inputs', percent: 2 });
    // the graph was queued; the inputs went straight into ComfyUI's input folder (same container),
    // not over HTTP: the rendered MP4 above is made from the pose video found there
    expect(dirs.comfyRequests()).toContain('POST /prompt');
    expect(dirs.comfyRequests()).not.toContain('POST /upload/image');
    expectNoLeftovers();
  });

  it('rejects bad input with INVALID_INPUT naming the fields, and keeps serving', async () => {
    const body = await runJob('job-bad', jobInput('x', { width: 250, colour: 'red' }));
    expect(body.error).toMatch(/^INVALID_INPUT: /);
    expect(body.error).toMatch(/width/);
    expect(body.error).toMatch(/colour/);
    expectNoLeftovers();
  });

  it("a job's s3Config: wrong types fail at once naming the fields; a good one gets the video in its own bucket", async () => {
    api.addJobs({ id: 'job-s3-bad', input: jobInput('x'), s3Config: { accessId: 'a', accessSecret: 's', bucketName: [], endpointUrl: 5 } });
    const bad = (await api.waitFor((r) => isFinal(r) && r.jobId === 'job-s3-bad', 15_000)).body as { error?: string };
    expect(bad.error).toMatch(/^INVALID_INPUT: /);
    expect(bad.error).toContain('s3Config.bucketName: must be a string');
    expect(bad.error).toContain('s3Config.endpointUrl: must be a string');
    expect(dirs.comfyRequests().filter((r) => r === 'POST /prompt')).toHaveLength(1); // only the first job's

    const s3 = s3TestServer();
    const s3Config = { accessId: s3.accessKeyId, accessSecret: s3.secretAccessKey, bucketName: s3.jobBucket, endpointUrl: s3.endpoint };
    api.addJobs({ id: 'job-s3-own', input: jobInput(), s3Config });
    const own = (await api.waitFor((r) => isFinal(r) && r.jobId === 'job-s3-own', 15_000)).body as {
      error?: string;
      output: { videos: Video[] };
    };
    expect(own.error).toBeUndefined();
    expect(own.output.videos[0]).toMatchObject({ bucket: s3.jobBucket, key: expect.stringMatching(/^e2e\/job-s3-own\//) });
    expect((await downloadAndProbe(own.output.videos[0]!.url, scratch)).frames).toBe(SIZE.num_frames);
    expectNoLeftovers();
  });

  it('fails an unreachable input (404) with INPUT_FETCH_FAILED naming the field', async () => {
    const body = await runJob('job-404', jobInput('x', { pose_video: `${inputs.url}/missing.mp4` }));
    expect(body.error).toMatch(/^INPUT_FETCH_FAILED: /);
    expect(body.error).toMatch(/pose_video/);
    expect(inputs.paths).toContain('/missing.mp4');
    expectNoLeftovers();
  });

  it('reports a GPU out-of-memory as OUT_OF_MEMORY', async () => {
    const body = await runJob('job-oom', jobInput('dance [fake:oom]'));
    expect(body.error).toMatch(/^OUT_OF_MEMORY: /);
    expectNoLeftovers();
  });

  it('fails the job with COMFY_CRASHED when ComfyUI dies mid-sampler; the restarted ComfyUI serves the next job', async () => {
    const firstPid = dirs.comfyPid();
    const crashed = await runJob('job-crash', jobInput('dance [fake:crash]'));
    expect(crashed.error).toMatch(/^COMFY_CRASHED: /);
    expect(crashed.refresh_worker).toBeUndefined(); // one crash is recovered from
    expectNoLeftovers();
    const readyLines = (): number => worker.output().split('"ComfyUI is ready"').length - 1;
    const after = await runJob('job-ok-2', jobInput());
    await expectGoodVideo(after, 'job-ok-2');
    expect(readyLines()).toBe(2); // at boot and after the restart
    expect(dirs.comfyPid()).not.toBe(firstPid);
    expect(isAlive(firstPid)).toBe(false);
    expectNoLeftovers();
  });

  it('on a RunPod stop: interrupts ComfyUI, posts nothing for the job, and takes the next one', async () => {
    api.addJobs({ id: 'job-cancel', input: jobInput('dance [fake:hang]') });
    // the sampler is running (progress says so) before RunPod stops the job
    await api.waitFor(
      (r) => r.kind === 'done' && r.jobId === 'job-cancel' && (r.body as { output?: { stage?: string } }).output?.stage === 'sampling',
      10_000,
    );
    const interruptsBefore = dirs.comfyRequests().filter((l) => l.startsWith('POST /interrupt')).length;
    api.stopJobs(['job-cancel']);
    await waitUntil(
      'ComfyUI to get /interrupt',
      () => dirs.comfyRequests().filter((l) => l.startsWith('POST /interrupt')).length > interruptsBefore,
    );
    const next = await runJob('job-ok-3', jobInput());
    await expectGoodVideo(next, 'job-ok-3');
    expect(api.requests.filter((r) => isFinal(r) && r.jobId === 'job-cancel')).toEqual([]);
    expectNoLeftovers();
  });

  it('ends a job that outlives JOB_TIMEOUT_S with TIMEOUT and interrupts ComfyUI', async () => {
    const interruptsBefore = dirs.comfyRequests().filter((l) => l.startsWith('POST /interrupt')).length;
    const body = await runJob('job-timeout', jobInput('dance [fake:hang]'), 40_000);
    expect(body.error).toMatch(/^TIMEOUT: /);
    expect(dirs.comfyRequests().filter((l) => l.startsWith('POST /interrupt')).length).toBeGreaterThan(interruptsBefore);
    expectNoLeftovers();
  }, 60_000);

  it('on SIGTERM mid-job: finishes the job, posts its result, pinged with its id, exits 0', async () => {
    api.addJobs({ id: 'job-term', input: jobInput('dance [fake:slow]') });
    const sampling = await api.waitFor(
      (r) => r.kind === 'done' && r.jobId === 'job-term' && (r.body as { output?: { stage?: string } }).output?.stage === 'sampling',
      10_000,
    );
    expect(sampling.body).toMatchObject({ output: { stage: 'sampling', step: 1, steps: 4 } });
    expect((sampling.body as { output: { percent: number } }).output.percent).toBeGreaterThan(10);
    worker.kill('SIGTERM');
    expect(await worker.exit).toBe(0);
    const final = api.requests.filter((r) => isFinal(r) && r.jobId === 'job-term');
    expect(final).toHaveLength(1);
    await expectGoodVideo(final[0]!.body as Record<string, unknown>, 'job-term');
    // the heartbeat named the running job while it ran (2 s of sampling, 200 ms pings)
    const pings = api.of('ping');
    expect(pings.some((r) => r.query.get('job_id') === 'job-term')).toBe(true);
    expect(pings.every((r) => r.workerId === POD_ID && r.headers.authorization === API_KEY)).toBe(true);
    expectNoLeftovers();
    // the worker stopped its ComfyUI before exiting
    expect(isAlive(dirs.comfyPid())).toBe(false);
  });
});
