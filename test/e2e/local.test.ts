// End to end, the local modes: the bundle serving RunPod's endpoint API on loopback, driven by the real
// runpod-sdk client (runSync, run + webhook, status, cancel), and the one-shot `test_input.json` run.
// No bucket is configured: videos are written to OUTPUT_DIR and come back as URLs the local API serves.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import runpodSdk from 'runpod-sdk';
import {
  baseEnv,
  downloadAndProbe,
  ffprobe,
  filesUnder,
  prepareProduct,
  startInputServer,
  startWorker,
  strayFolders,
  waitUntil,
  workerDirs,
  type InputServer,
  type Product,
} from './harness';

const SIZE = { width: 272, height: 256, num_frames: 9 };

let product: Product;
let inputs: InputServer;
let scratch: string;

beforeAll(async () => {
  product = await prepareProduct();
  scratch = mkdtempSync(path.join(os.tmpdir(), 'sd-e2e-local-'));
  inputs = await startInputServer({ 'person.png': product.fixtures.png, 'dance.mp4': product.fixtures.mp4 });
});

afterAll(async () => {
  await inputs?.close();
  product?.close();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

function jobInput(prompt = 'a person dancing'): Record<string, unknown> {
  return { reference_image: `${inputs.url}/person.png`, pose_video: `${inputs.url}/dance.mp4`, ...SIZE, seed: 5, prompt };
}

interface Video {
  url: string;
  width: number;
  height: number;
  frames: number;
  fps: number;
  bytes: number;
  bucket?: string;
}

async function expectServedVideo(output: unknown, apiUrl: string): Promise<void> {
  const videos = (output as { videos: Video[] }).videos;
  expect(videos).toHaveLength(1);
  const video = videos[0]!;
  expect(video.bucket).toBeUndefined();
  expect(video.url.startsWith(`${apiUrl}/files/`)).toBe(true);
  expect(video).toMatchObject({ width: SIZE.width, height: SIZE.height, frames: SIZE.num_frames, fps: 16 });
  const probed = await downloadAndProbe(video.url, scratch);
  expect(probed).toMatchObject({
    codec: 'h264',
    width: SIZE.width,
    height: SIZE.height,
    frames: SIZE.num_frames,
    fps: 16,
    bytes: video.bytes,
  });
}

interface WebhookReceiver {
  url: string;
  next(): Promise<Record<string, unknown>>;
  /** Deliveries received that no next() took yet. */
  unclaimed(): number;
  close(): Promise<void>;
}

async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const bodies: Record<string, unknown>[] = [];
  const waiters: ((b: Record<string, unknown>) => void)[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      res.writeHead(200).end();
      const w = waiters.shift();
      if (w) w(body);
      else bodies.push(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    next: () => {
      const b = bodies.shift();
      return b ? Promise.resolve(b) : new Promise((resolve) => waiters.push(resolve));
    },
    unclaimed: () => bodies.length,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('worker bundle serving the local API, driven by runpod-sdk', () => {
  it('runSync, run + webhook, status and cancel work as on RunPod; the worker keeps serving', async () => {
    const dirs = workerDirs(product, 'api');
    // Port 0: the OS picks a free port as the API binds it (no window for another process to take it).
    const worker = startWorker(product.bundle, {
      env: await baseEnv(product, dirs, { JOB_TIMEOUT_S: '30' }),
      args: ['--rp_serve_api', '--rp_api_host', '127.0.0.1', '--rp_api_port', '0'],
    });
    const hooks = await startWebhookReceiver();
    try {
      await worker.waitForOutput('"local API listening"');
      const listening = worker
        .output()
        .split('\n')
        .find((l) => l.includes('"local API listening"')) as string;
      const apiUrl = (JSON.parse(listening) as { url: string }).url;
      expect(apiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const endpoint = runpodSdk('local-key', { baseUrl: apiUrl }).endpoint('local')!;

      const sync = await endpoint.runSync({ input: jobInput() }, 30_000);
      expect(sync).toMatchObject({ status: 'COMPLETED' });
      await expectServedVideo(sync.output, apiUrl);
      expect(filesUnder(dirs.workDir)).toEqual([]);

      const queued = await endpoint.run({ input: jobInput('a person dancing, again'), webhook: hooks.url });
      expect(['IN_QUEUE', 'IN_PROGRESS']).toContain(queued.status);
      const hooked = await hooks.next();
      expect(hooked).toMatchObject({ id: queued.id, status: 'COMPLETED' });
      await expectServedVideo(hooked.output, apiUrl);
      const status = await endpoint.status(queued.id);
      expect(status).toMatchObject({ id: queued.id, status: 'COMPLETED' });
      expect((status as { output?: unknown }).output).toEqual(hooked.output);

      const bad = await endpoint.runSync({ input: { ...jobInput(), num_frames: 10 } }, 30_000);
      expect(bad).toMatchObject({ status: 'FAILED' });
      expect(String((bad as { error?: unknown }).error)).toMatch(/^INVALID_INPUT: num_frames/);

      const prompts = (): number => dirs.comfyRequests().filter((l) => l === 'POST /prompt').length;
      const promptsBefore = prompts();
      const hanging = await endpoint.run({ input: jobInput('dance [fake:hang]'), webhook: hooks.url });
      await waitUntil('the hanging prompt to reach ComfyUI', () => prompts() > promptsBefore);
      const cancelled = await endpoint.cancel(hanging.id);
      expect(cancelled).toMatchObject({ id: hanging.id, status: 'CANCELLED' });
      await waitUntil('ComfyUI to get /interrupt', () => dirs.comfyRequests().some((l) => l.startsWith('POST /interrupt')));
      expect(await endpoint.status(hanging.id)).toMatchObject({ status: 'CANCELLED' });

      const after = await endpoint.runSync({ input: jobInput('after the cancel') }, 30_000);
      expect(after).toMatchObject({ status: 'COMPLETED' });
      await expectServedVideo(after.output, apiUrl);
      expect(filesUnder(dirs.workDir)).toEqual([]);
      expect(strayFolders(dirs.workDir)).toEqual([]);
      // a cancelled job calls no webhook (as RunPod): only the completed run's delivery arrived
      expect(hooks.unclaimed()).toBe(0);
      expect(await worker.stop()).toBe(0);
    } finally {
      await worker.stop();
      await hooks.close();
    }
  });
});

describe('worker bundle in one-shot mode (test_input.json)', () => {
  it('runs ./test_input.json once, prints the result and exits 0; a failed job exits 1', async () => {
    const okDirs = workerDirs(product, 'oneshot-ok');
    const badDirs = workerDirs(product, 'oneshot-bad');
    const okCwd = mkdtempSync(path.join(product.root, 'cwd-ok-'));
    const badCwd = mkdtempSync(path.join(product.root, 'cwd-bad-'));
    writeFileSync(path.join(okCwd, 'test_input.json'), JSON.stringify({ input: jobInput() }));
    writeFileSync(path.join(badCwd, 'test_input.json'), JSON.stringify({ input: jobInput('dance [fake:oom]') }));
    const ok = startWorker(product.bundle, { env: await baseEnv(product, okDirs), cwd: okCwd });
    const bad = startWorker(product.bundle, { env: await baseEnv(product, badDirs), cwd: badCwd });
    try {
      const [okCode, badCode] = await Promise.all([ok.exit, bad.exit]);
      expect({ okCode, badCode, okOut: okCode === 0 ? '' : ok.output().slice(-3000) }).toEqual({ okCode: 0, badCode: 1, okOut: '' });
      expect(ok.output()).toMatch(/Job local_test-\w+-\w+ completed successfully\./);
      expect(bad.output()).toMatch(/Job local_test-\w+-\w+ failed with error: OUT_OF_MEMORY: /);
      // one-shot returns the local path of the MP4 written to OUTPUT_DIR
      const printed = /"path": "([^"]+\.mp4)"/.exec(ok.output())?.[1];
      expect(printed).toBeDefined();
      expect(printed!.startsWith(okDirs.outputDir)).toBe(true);
      expect(await ffprobe(printed!)).toMatchObject({ width: SIZE.width, height: SIZE.height, frames: SIZE.num_frames, fps: 16 });
      expect(readFileSync(printed!).length).toBeGreaterThan(0);
      for (const d of [okDirs, badDirs]) {
        expect(filesUnder(d.workDir)).toEqual([]);
        expect(strayFolders(d.workDir)).toEqual([]);
      }
    } finally {
      await Promise.all([ok.stop(), bad.stop()]);
    }
  });
});
