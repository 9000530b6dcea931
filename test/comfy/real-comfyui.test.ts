// Opt-in: runs ComfySupervisor + ComfyClient against a real ComfyUI on the CPU with a workflow that needs
// no weights and writes a video (EmptyImage → CreateVideo → core SaveVideo). Skipped unless
// COMFYUI_REAL_DIR (a ComfyUI checkout) is set; COMFYUI_REAL_PYTHON names its Python (default python3).
// Checked against Comfy-Org/ComfyUI v0.3.64 (a125cd84b054a57729b5eecab930ca9408719832).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ComfyClient } from '../../src/comfy/client';
import type { ComfyEndpoint } from '../../src/comfy/endpoint';
import { videoOutputs } from '../../src/comfy/outputs';
import { ComfySupervisor } from '../../src/comfy/supervisor';
import { WorkerError } from '../../src/lib/errors';
import { silentLogger } from '../../src/lib/logger';
import { freePort } from '../support/free-port';

const dir = process.env.COMFYUI_REAL_DIR;
const python = process.env.COMFYUI_REAL_PYTHON ?? 'python3';
const suite = dir ? describe : describe.skip;

function videoWorkflow(frames: number): Record<string, unknown> {
  return {
    '1': { class_type: 'EmptyImage', inputs: { width: 64, height: 64, batch_size: frames, color: 0xff8800 } },
    '2': { class_type: 'CreateVideo', inputs: { images: ['1', 0], fps: 8 } },
    '3': { class_type: 'SaveVideo', inputs: { video: ['2', 0], filename_prefix: 'video/real', format: 'mp4', codec: 'h264' } },
  };
}

/** Three slow CPU nodes in a row: an interrupt lands while one runs and takes effect at the next. */
function slowWorkflow(): Record<string, unknown> {
  return {
    '1': { class_type: 'EmptyImage', inputs: { width: 512, height: 512, batch_size: 16, color: 0 } },
    '2': { class_type: 'ImageScaleBy', inputs: { image: ['1', 0], upscale_method: 'lanczos', scale_by: 4 } },
    '3': { class_type: 'ImageScaleBy', inputs: { image: ['2', 0], upscale_method: 'lanczos', scale_by: 0.25 } },
    '4': { class_type: 'ImageScaleBy', inputs: { image: ['3', 0], upscale_method: 'lanczos', scale_by: 4 } },
    '5': { class_type: 'CreateVideo', inputs: { images: ['4', 0], fps: 8 } },
    '6': { class_type: 'SaveVideo', inputs: { video: ['5', 0], filename_prefix: 'slow', format: 'auto', codec: 'auto' } },
  };
}

suite('real ComfyUI on the CPU (opt-in)', () => {
  let workDir: string;
  let supervisor: ComfySupervisor;
  let endpoint: ComfyEndpoint;
  let client: ComfyClient;

  beforeAll(async () => {
    workDir = mkdtempSync(path.join(os.tmpdir(), 'comfy-real-'));
    supervisor = new ComfySupervisor({
      config: {
        dir: dir!,
        python,
        url: undefined,
        port: await freePort(),
        extraArgs: ['--cpu', '--disable-all-custom-nodes'],
        startupTimeoutMs: 240_000,
        extraModelPathsConfig: undefined,
      },
      workDir,
      requiredNodeClasses: ['EmptyImage', 'CreateVideo', 'SaveVideo', 'ImageScaleBy'],
      logger: silentLogger,
    });
    supervisor.start();
    endpoint = await supervisor.ready();
    client = new ComfyClient({ endpoint, logger: silentLogger });
  }, 300_000);

  afterAll(async () => {
    await supervisor?.stop();
    rmSync(workDir, { recursive: true, force: true });
  }, 60_000);

  it('runs a weight-free workflow that writes an MP4 and reads it from disk and from /view', async () => {
    const progress: { percent: number; nodeType?: string }[] = [];
    const result = await client.runPrompt(videoWorkflow(8), {
      signal: new AbortController().signal,
      timeoutMs: 120_000,
      onProgress: (p) => progress.push(p),
    });
    const videos = videoOutputs(result.outputs);
    expect(videos).toHaveLength(1);
    expect(videos[0]).toMatchObject({ key: 'images', animated: true, type: 'output', nodeId: '3', subfolder: `${result.jobFolder}/video` });
    expect(videos[0]!.filename).toMatch(/^real_00001_\.mp4$/);
    const local = await client.saveOutput(videos[0]!, workDir);
    expect(local).toBe(path.join(endpoint.outputDir!, videos[0]!.subfolder, videos[0]!.filename));
    const bytes = readFileSync(local);
    expect(bytes.subarray(4, 8).toString('latin1')).toBe('ftyp');
    const remote = new ComfyClient({ endpoint: { baseUrl: endpoint.baseUrl }, logger: silentLogger });
    const downloaded = await remote.saveOutput(videos[0]!, workDir);
    expect(downloaded).toBe(path.join(workDir, videos[0]!.filename));
    expect(readFileSync(downloaded)).toEqual(bytes);
    // socket events became progress: each executed node was seen, 100 only at the end
    expect(new Set(progress.map((p) => p.nodeType))).toEqual(new Set(['EmptyImage', 'CreateVideo', 'SaveVideo', undefined]));
    expect(progress.at(-1)!.percent).toBe(100);
    // history is the truth and names our prompt
    const history = (await (await fetch(`${endpoint.baseUrl}/history/${result.promptId}`)).json()) as Record<
      string,
      { status: { status_str: string; messages: [string][] } }
    >;
    expect(history[result.promptId]!.status.status_str).toBe('success');
    expect(history[result.promptId]!.status.messages.map((m) => m[0])).toEqual([
      'execution_start',
      'execution_cached',
      'execution_success',
    ]);
    // the same graph again gets new files, not the cached names of the first run
    const again = await client.runPrompt(videoWorkflow(8), { signal: new AbortController().signal, timeoutMs: 120_000 });
    expect(videoOutputs(again.outputs)[0]!.subfolder).not.toBe(videos[0]!.subfolder);
    await client.cleanup({
      inputs: [],
      outputs: [...result.outputs, ...again.outputs],
      jobFolder: result.jobFolder,
      promptId: result.promptId,
    });
    await client.cleanup({ inputs: [], outputs: [], jobFolder: again.jobFolder });
    expect(existsSync(local)).toBe(false);
    expect(await (await fetch(`${endpoint.baseUrl}/history/${result.promptId}`)).json()).toEqual({});
  }, 180_000);

  it('uploads a video as an input and gets the stored name back', async () => {
    const src = path.join(workDir, 'pose.mp4');
    const result = await client.runPrompt(videoWorkflow(4), { signal: new AbortController().signal, timeoutMs: 120_000 });
    const video = videoOutputs(result.outputs)[0]!;
    const opened = await client.saveOutput(video, workDir);
    rmSync(src, { force: true });
    (await import('node:fs')).copyFileSync(opened, src);
    const name = await client.uploadInput({ path: src, name: 'pose-real.mp4' });
    expect(name).toBe('pose-real.mp4');
    expect(readFileSync(path.join(endpoint.inputDir!, name))).toEqual(readFileSync(src));
    await client.cleanup({ inputs: [name], outputs: result.outputs, jobFolder: result.jobFolder });
    expect(existsSync(path.join(endpoint.inputDir!, name))).toBe(false);
  }, 180_000);

  it('rejects bad workflows with the node and input named', async () => {
    const missing = await client
      .runPrompt({ ...videoWorkflow(2), '9': { class_type: 'NoSuchNode', inputs: {} } }, { signal: new AbortController().signal })
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(WorkerError);
    expect((missing as WorkerError).details.missingNodeType).toBe('NoSuchNode');
    const wf = videoWorkflow(2);
    (wf['1'] as { inputs: { width: number } }).inputs.width = -5;
    const bad = (await client.runPrompt(wf, { signal: new AbortController().signal }).catch((e: unknown) => e)) as WorkerError;
    expect(bad.code).toBe('WORKFLOW_REJECTED');
    expect(bad.message).toContain('node 1 (EmptyImage) input "width"');
  }, 60_000);

  it('on cancel interrupts its own prompt mid-run; ComfyUI records execution_interrupted and the queue is empty', async () => {
    const ac = new AbortController();
    const onProgress = (p: { nodeType?: string }) => {
      if (p.nodeType === 'ImageScaleBy' && !ac.signal.aborted) ac.abort(new WorkerError('CANCELLED', 'cancelled by the test'));
    };
    const err = (await client
      .runPrompt(slowWorkflow(), { signal: ac.signal, timeoutMs: 120_000, onProgress })
      .catch((e: unknown) => e)) as WorkerError;
    expect(err.code).toBe('CANCELLED');
    const deadline = Date.now() + 120_000;
    let status: { status_str: string; messages: [string, Record<string, unknown>][] } | undefined;
    while (!status && Date.now() < deadline) {
      const h = (await (await fetch(`${endpoint.baseUrl}/history?max_items=1`)).json()) as Record<
        string,
        { status: typeof status; prompt: unknown[] }
      >;
      const last = Object.values(h)[0];
      if (last && (last.prompt[2] as Record<string, unknown>)['6'] !== undefined) status = last.status;
      else await new Promise((r) => setTimeout(r, 100));
    }
    expect(status?.status_str).toBe('error');
    const interrupted = status!.messages.find((m) => m[0] === 'execution_interrupted')?.[1];
    expect(interrupted).toMatchObject({ node_type: 'ImageScaleBy' });
    const queue = (await (await fetch(`${endpoint.baseUrl}/queue`)).json()) as { queue_running: unknown[]; queue_pending: unknown[] };
    expect(queue.queue_running.length + queue.queue_pending.length).toBe(0);
  }, 180_000);
});
