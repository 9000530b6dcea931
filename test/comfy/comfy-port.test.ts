// handler/comfy-port.ts: the job's ComfyPort wired to a supervisor attached to the fake ComfyUI (an
// external ComfyUI: outputs are downloaded into the job's folder).
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { comfyHealth, comfyMissing, createComfyPort } from '../../handler/comfy-port';
import { inferenceUpdate, type ProgressUpdate } from '../../src/job/progress';
import { freePort } from '../support/free-port';
import { ComfySupervisor } from '../../src/comfy/supervisor';
import type { ComfySession } from '../../src/job/ports';
import { WorkerError } from '../../src/lib/errors';
import { silentLogger } from '../../src/lib/logger';
import { FAKE_MP4, FakeComfyUI } from '../fakes/comfyui';
import { attachedSupervisor, recordingLogger, rejection, startHarness, vhsWorkflow, type Harness } from './helpers';

let h: Harness;
let supervisor: ComfySupervisor;
let session: ComfySession;
const signal = new AbortController().signal;

beforeEach(async () => {
  h = await startHarness();
  supervisor = attachedSupervisor(h.fake.url, { workDir: h.root, startupTimeoutMs: 5000 });
  session = await createComfyPort({ supervisor, unavailable: undefined }).ready(signal, silentLogger);
  const ref = path.join(h.root, 'ref-source.png');
  writeFileSync(ref, 'png');
  await session.uploadInput({ path: ref, name: 'ref.png' }, signal);
});
afterEach(async () => {
  await supervisor.stop();
  await h.close();
});

describe('ComfyPort session', () => {
  it("hands out the client's output files as the job's videos, downloads them into the job folder, and cleans up", async () => {
    const result = await session.runPrompt(vhsWorkflow(), { signal, onProgress: () => {} });
    expect(result.videos).toEqual([expect.objectContaining({ type: 'output', key: 'gifs', nodeId: '3', format: 'video/h264-mp4' })]);
    const video = result.videos[0]!;
    const jobDir = path.join(h.root, 'job');
    mkdirSync(jobDir);
    const local = await session.localPath(video, jobDir, signal);
    expect(local).toBe(path.join(jobDir, video.filename));
    expect(readFileSync(local)).toEqual(FAKE_MP4);
    // nothing is keyed on object identity: an equal video is found too
    const copyDir = path.join(h.root, 'copy');
    mkdirSync(copyDir);
    expect(readFileSync(await session.localPath({ ...video }, copyDir, signal))).toEqual(FAKE_MP4);
    await session.cleanup({ inputs: ['ref.png'], videos: result.videos });
    expect(h.fake.historyOf(result.promptId)).toBeUndefined();
  });

  it("reports ComfyUI's own execution time, and progress whose final (node-less 100 %) update is a sensible stage", async () => {
    const updates: ProgressUpdate[] = [];
    const result = await session.runPrompt(vhsWorkflow(), { signal, onProgress: (p) => updates.push(inferenceUpdate(p)) });
    const messages = h.fake.historyOf(result.promptId)!.status.messages;
    const at = (type: string) => (messages.find(([t]) => t === type)![1] as { timestamp: number }).timestamp;
    expect(result.executionMs).toBe(at('execution_success') - at('execution_start'));
    expect(updates.map((u) => u.stage)).toContain('sampling');
    expect(updates.at(-1)).toEqual({ stage: 'encoding', percent: 92 });
    const afterSampling = updates.slice(updates.findIndex((u) => u.stage === 'sampling'));
    expect(afterSampling.map((u) => u.stage)).not.toContain('preprocessing');
  });

  it("adds no deadline of its own: the job's signal (JOB_TIMEOUT_S, executionTimeout) is the only one", async () => {
    h.fake.behaviour = { outcome: 'wait-for-interrupt' };
    const job = new AbortController();
    const running = session.runPrompt(vhsWorkflow(), { signal: job.signal, onProgress: () => {} });
    await h.fake.waitForEvent('progress');
    job.abort(new WorkerError('TIMEOUT', 'the job ran longer than JOB_TIMEOUT_S (1000 ms)'));
    const err = await rejection(running);
    expect(err.code).toBe('TIMEOUT');
    expect(err.message).toContain('JOB_TIMEOUT_S');
    expect(h.fake.requests.some((r) => r.path === '/interrupt')).toBe(true);

    const timeout = jest.spyOn(AbortSignal, 'timeout');
    try {
      h.fake.behaviour = { outcome: 'success' };
      await session.runPrompt(vhsWorkflow(), { signal, onProgress: () => {} });
      const deadlines = timeout.mock.calls.map(([ms]) => ms);
      expect(deadlines.length).toBeGreaterThan(0); // the per-request deadlines are seen…
      expect(deadlines.filter((ms) => ms > 30_000)).toEqual([]); // …and nothing like a job deadline
    } finally {
      timeout.mockRestore();
    }
  });
});

describe('ComfyPort with an external ComfyUI that is away', () => {
  it("tells the job's log what it waits for while ComfyUI restarts, then runs the job", async () => {
    const url = h.fake.url;
    const port = h.fake.port;
    await h.fake.crash();
    const log = recordingLogger();
    const waiting = createComfyPort({ supervisor, unavailable: undefined }).ready(signal, log);
    await new Promise<void>((resolve) => {
      const check = () => (log.lines.length > 0 ? resolve() : setTimeout(check, 5));
      check();
    });
    expect(log.lines[0]).toMatchObject({
      level: 'info',
      message: expect.stringMatching(new RegExp(`^waiting for ComfyUI at ${url} \\((other side closed|ECONNREFUSED)\\)$`)),
      fields: { comfyui: 'starting' },
    });
    const back = await FakeComfyUI.start({ dirs: h.dirs, port, nodeClasses: ['VHS_VideoCombine', 'LoadImage', 'WanVideoSampler'] });
    try {
      const again = await waiting;
      writeFileSync(path.join(h.root, 'ref-source.png'), 'png');
      await again.uploadInput({ path: path.join(h.root, 'ref-source.png'), name: 'ref.png' }, signal);
      const result = await again.runPrompt(vhsWorkflow(), { signal, onProgress: () => {} });
      expect(result.videos).toHaveLength(1);
    } finally {
      await back.close();
    }
  });
});

describe('comfyHealth (the local API /health hook)', () => {
  it('is initializing while ComfyUI starts, ready once it answers, and shows its state and last error', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const away = attachedSupervisor(url, { workDir: h.root, startupTimeoutMs: 5000, probeIntervalMs: 20 });
    try {
      away.start();
      await expect(comfyHealth({ supervisor: away, unavailable: undefined })).resolves.toEqual({
        state: 'initializing',
        comfyui: { state: 'starting', url },
      });
      const refused = async () => (await comfyHealth({ supervisor: away, unavailable: undefined })).comfyui;
      for (let i = 0; i < 1000 && !((await refused()) as { lastError?: string }).lastError; i++)
        await new Promise((r) => setTimeout(r, 10));
      expect(await refused()).toEqual({ state: 'starting', url, lastError: 'ECONNREFUSED' });
    } finally {
      await away.stop();
    }
    await expect(comfyHealth({ supervisor, unavailable: undefined })).resolves.toEqual({
      state: 'ready',
      comfyui: { state: 'ready', url: h.fake.url },
    });
  });

  it('is unhealthy with the reason when there is no ComfyUI to run', async () => {
    const unavailable = comfyMissing({
      dir: '/nonexistent',
      python: 'python3',
      url: undefined,
      port: 1,
      extraArgs: [],
      startupTimeoutMs: 5000,
      extraModelPathsConfig: undefined,
    });
    expect(unavailable?.code).toBe('COMFY_UNAVAILABLE');
    await expect(comfyHealth({ supervisor: undefined, unavailable })).resolves.toEqual({
      state: 'unhealthy',
      comfyui: { state: 'unhealthy', lastError: expect.stringContaining('COMFYUI_DIR (/nonexistent) has no main.py') },
    });
  });
});
