// handler/comfy-port.ts: the job's ComfyPort wired to a supervisor attached to the fake ComfyUI (an
// external ComfyUI: outputs are downloaded into the job's folder).
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createComfyPort } from '../../handler/comfy-port';
import { ComfySupervisor } from '../../src/comfy/supervisor';
import type { ComfySession } from '../../src/job/ports';
import { WorkerError } from '../../src/lib/errors';
import { silentLogger } from '../../src/lib/logger';
import { FAKE_MP4 } from '../fakes/comfyui';
import { rejection, startHarness, vhsWorkflow, type Harness } from './helpers';

let h: Harness;
let supervisor: ComfySupervisor;
let session: ComfySession;
const signal = new AbortController().signal;

beforeEach(async () => {
  h = await startHarness();
  supervisor = new ComfySupervisor({
    config: { dir: '/nonexistent', python: 'python3', url: h.fake.url, port: 1, extraArgs: [], startupTimeoutMs: 5000, extraModelPathsConfig: undefined },
    workDir: h.root,
    requiredNodeClasses: ['VHS_VideoCombine'],
    logger: silentLogger,
  });
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
