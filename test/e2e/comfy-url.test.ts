// End to end, the bundle with COMFYUI_URL (a ComfyUI it does not start), as a newcomer meets it: pointing at
// nothing, /health says ComfyUI is starting and why (ECONNREFUSED) and a job waits for it; when ComfyUI
// comes up the job runs; when it restarts between jobs the next job waits for it instead of failing.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  baseEnv,
  ffmpegPath,
  freePort,
  prepareProduct,
  startInputServer,
  startWorker,
  workerDirs,
  type InputServer,
  type Product,
} from './harness';

let product: Product;
let inputs: InputServer;

beforeAll(async () => {
  product = await prepareProduct();
  inputs = await startInputServer({ 'person.png': product.fixtures.png, 'dance.mp4': product.fixtures.mp4 });
});

afterAll(async () => {
  await inputs?.close();
  product?.close();
});

/** The stand-in ComfyUI started by hand on `port`, as a separately run ComfyUI would be. */
function startComfyUI(port: number): { exited: Promise<void>; stop(): Promise<void> } {
  const dir = mkdtempSync(path.join(product.root, 'external-comfyui-'));
  copyFileSync(product.standin, path.join(dir, 'main.py'));
  writeFileSync(path.join(dir, 'standin.json'), JSON.stringify({ steadydancer: { ffmpegPath } }));
  const folders = ['input', 'output', 'temp'].map((f) => path.join(dir, f));
  for (const f of folders) mkdirSync(f);
  const child: ChildProcess = spawn(
    process.execPath,
    [
      'main.py',
      '--port',
      String(port),
      '--input-directory',
      folders[0]!,
      '--output-directory',
      folders[1]!,
      '--temp-directory',
      folders[2]!,
    ],
    { cwd: dir, stdio: 'ignore' },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

async function getJson(url: string, init?: RequestInit): Promise<Record<string, unknown>> {
  return (await (await fetch(url, init)).json()) as Record<string, unknown>;
}

describe('worker bundle with COMFYUI_URL', () => {
  it('reports ComfyUI starting with the reason on /health, and jobs wait for ComfyUI (at first and after a restart) instead of failing', async () => {
    const comfyPort = await freePort();
    const comfyUrl = `http://127.0.0.1:${comfyPort}`;
    const apiPort = await freePort();
    const api = `http://127.0.0.1:${apiPort}`;
    const dirs = workerDirs(product, 'comfy-url');
    const worker = startWorker(product.bundle, {
      env: await baseEnv(product, dirs, { COMFYUI_URL: comfyUrl, COMFYUI_STARTUP_TIMEOUT_S: '60', JOB_TIMEOUT_S: '90' }),
      args: ['--rp_serve_api', '--rp_api_host', '127.0.0.1', '--rp_api_port', String(apiPort)],
    });
    let comfy: ReturnType<typeof startComfyUI> | undefined;
    const input = {
      reference_image: `${inputs.url}/person.png`,
      pose_video: `${inputs.url}/dance.mp4`,
      width: 272,
      height: 256,
      num_frames: 9,
      seed: 5,
    };
    try {
      await worker.waitForOutput('"local API listening"');
      let health = await getJson(`${api}/health`);
      expect(health).toMatchObject({ workers: { initializing: 1, ready: 0 }, comfyui: { state: 'starting', url: comfyUrl } });
      for (let i = 0; i < 500 && !(health.comfyui as { lastError?: string }).lastError; i++) {
        await new Promise((r) => setTimeout(r, 20));
        health = await getJson(`${api}/health`);
      }
      expect(health.comfyui).toEqual({ state: 'starting', url: comfyUrl, lastError: 'ECONNREFUSED' });

      const first = await getJson(`${api}/run`, {
        method: 'POST',
        body: JSON.stringify({ input }),
        headers: { 'content-type': 'application/json' },
      });
      await worker.waitForOutput(`waiting for ComfyUI at ${comfyUrl} (ECONNREFUSED)`, 30_000);
      expect((await getJson(`${api}/status/${String(first.id)}`)).status).toBe('IN_PROGRESS');

      comfy = startComfyUI(comfyPort);
      const done = await getJson(`${api}/status-sync/${String(first.id)}?wait=60000`);
      expect(done).toMatchObject({
        status: 'COMPLETED',
        output: { videos: [expect.objectContaining({ width: 272, height: 256, frames: 9 })] },
      });
      expect(await getJson(`${api}/health`)).toMatchObject({
        workers: { initializing: 0, ready: 1 },
        comfyui: { state: 'ready', url: comfyUrl },
      });

      // ComfyUI restarts between jobs: the next job waits for it
      await comfy.stop();
      const second = await getJson(`${api}/run`, {
        method: 'POST',
        body: JSON.stringify({ input: { ...input, seed: 6 } }),
        headers: { 'content-type': 'application/json' },
      });
      await worker.waitForOutput(`ComfyUI at ${comfyUrl} does not answer`, 30_000);
      expect((await getJson(`${api}/status/${String(second.id)}`)).status).toBe('IN_PROGRESS');
      comfy = startComfyUI(comfyPort);
      expect(await getJson(`${api}/status-sync/${String(second.id)}?wait=60000`)).toMatchObject({ status: 'COMPLETED' });
      expect(await worker.stop()).toBe(0);
    } finally {
      await worker.stop();
      await comfy?.stop();
    }
  });
});
