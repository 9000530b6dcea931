import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { WorkerError } from '../../src/lib/errors';
import { videoOutputs } from '../../src/comfy/outputs';
import { ComfySocket } from '../../src/comfy/socket';
import { silentLogger } from '../../src/lib/logger';
import { FAKE_MP4 } from '../fakes/comfyui';
import { deferred, rejection, saveVideoWorkflow, startHarness, vhsWorkflow, type Harness } from './helpers';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
  writeFileSync(path.join(h.dirs.input, 'ref.png'), 'png');
});
afterEach(async () => {
  await h.close();
});

const run = (opts: { signal?: AbortSignal; timeoutMs?: number } = {}) => ({
  signal: opts.signal ?? new AbortController().signal,
  ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
});

describe('ComfyClient.runPrompt', () => {
  it('opens the socket before queueing and sends our client_id and a UUID prompt_id', async () => {
    const client = h.client();
    const order: string[] = [];
    h.fake.onEvent((type, data) => {
      if (type === 'status' && 'sid' in data) order.push('socket');
    });
    const before = h.fake.requests.length;
    const result = await client.runPrompt(vhsWorkflow(), run());
    const post = h.fake.requests.slice(before).find((r) => r.path === '/prompt')!;
    order.push('queued');
    const body = post.body as { client_id: string; prompt_id: string };
    expect(order[0]).toBe('socket');
    expect(body.prompt_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(body.client_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(result.promptId).toBe(body.prompt_id);
  });

  it('takes prompt_id from the response when the server mints its own', async () => {
    h.fake.acceptClientPromptId = false;
    const result = await h.client().runPrompt(vhsWorkflow(), run());
    const sent = (h.fake.requests.find((r) => r.path === '/prompt')!.body as { prompt_id: string }).prompt_id;
    expect(result.promptId).not.toBe(sent);
    expect(h.fake.historyOf(result.promptId)).toBeDefined();
    expect(client_videos(result.outputs)).toHaveLength(1);
  });

  it('returns the VHS gifs output, read from disk when local, with format and frame rate', async () => {
    const client = h.client();
    const result = await client.runPrompt(vhsWorkflow(), run());
    const videos = videoOutputs(result.outputs);
    expect(videos).toEqual([
      expect.objectContaining({
        key: 'gifs',
        type: 'output',
        format: 'video/h264-mp4',
        frameRate: 16,
        nodeId: '3',
        subfolder: result.jobFolder,
      }),
    ]);
    const saved = await client.saveOutput(videos[0]!, h.root);
    expect(saved).toBe(path.join(h.dirs.output, result.jobFolder, videos[0]!.filename)); // ComfyUI's own file, not a copy
    expect(readFileSync(saved)).toEqual(FAKE_MP4);
  });

  it('returns core SaveVideo (images + animated, subfolder kept) and skips previews, streamed from /view when external', async () => {
    const client = h.client({ local: false });
    const result = await client.runPrompt(saveVideoWorkflow(), run());
    expect(result.outputs.some((f) => f.type === 'temp')).toBe(true); // the preview is listed…
    const videos = videoOutputs(result.outputs);
    expect(videos).toHaveLength(1); // …but is not a video
    expect(videos[0]).toMatchObject({ key: 'images', animated: true, subfolder: `${result.jobFolder}/video`, nodeId: '4' });
    expect(videos[0]!.filename).toMatch(/^ComfyUI_\d{5}_\.mp4$/);
    const downloads = path.join(h.root, 'downloads');
    mkdirSync(downloads);
    const saved = await client.saveOutput(videos[0]!, downloads);
    expect(saved).toBe(path.join(downloads, videos[0]!.filename));
    expect(readFileSync(saved)).toEqual(FAKE_MP4);
    const view = h.fake.requests.find((r) => r.path.startsWith('/view'))!;
    expect(new URL(view.path, 'http://x').searchParams.get('subfolder')).toBe(`${result.jobFolder}/video`);
  });

  it('gives an identical prompt new file names (no cache replay of an earlier job)', async () => {
    const client = h.client();
    const a = await client.runPrompt(vhsWorkflow(), run());
    await client.cleanup({ inputs: [], outputs: a.outputs, jobFolder: a.jobFolder });
    const b = await client.runPrompt(vhsWorkflow(), run());
    const video = videoOutputs(b.outputs)[0]!;
    expect(video.subfolder).not.toBe(videoOutputs(a.outputs)[0]!.subfolder);
    await expect(client.saveOutput(video, h.root)).resolves.toBe(path.join(h.dirs.output, video.subfolder, video.filename));
  });

  it('reports node and sampler-step progress as a percent', async () => {
    const seen: { percent: number; node?: string; nodeType?: string; step?: number; steps?: number }[] = [];
    await h.client().runPrompt(vhsWorkflow(), { ...run(), onProgress: (p) => seen.push(p) });
    const steps = seen.filter((p) => p.nodeType === 'WanVideoSampler' && p.step !== undefined);
    expect(steps.map((p) => p.step)).toEqual([1, 2, 3, 4]);
    expect(steps.every((p) => p.steps === 4)).toBe(true);
    const percents = seen.map((p) => p.percent);
    expect([...percents].sort((x, y) => x - y)).toEqual(percents); // never goes back
    expect(percents.at(-1)).toBe(100);
    expect(percents.slice(0, -1).every((p) => p < 100)).toBe(true);
  });

  it('maps a 400 with node_errors to WORKFLOW_REJECTED naming node, class and input', async () => {
    const wf = vhsWorkflow();
    (wf['1'] as { inputs: { image: string } }).inputs.image = 'missing.png';
    const err = await rejection(h.client().runPrompt(wf, run()));
    expect(err.code).toBe('WORKFLOW_REJECTED');
    expect(err.message).toContain('node 1 (LoadImage) input "image"');
    expect(err.message).toContain('missing.png');
    expect(err.details).toMatchObject({ errorType: 'prompt_outputs_failed_validation' });
  });

  it('names a node type that is not installed (0.3.64 invalid_prompt and newer missing_node_type)', async () => {
    const wf = { ...vhsWorkflow(), '9': { class_type: 'WanVideoNotInstalled', inputs: {} } };
    const err = await rejection(h.client().runPrompt(wf, run()));
    expect(err.code).toBe('WORKFLOW_REJECTED');
    expect(err.details.missingNodeType).toBe('WanVideoNotInstalled');
    h.fake.nextPromptAnswer = {
      status: 400,
      body: {
        error: {
          type: 'missing_node_type',
          message: "Node 'X' not found. The custom node may not be installed.",
          details: "Node ID '#9'",
          extra_info: { node_id: '9', class_type: 'KJNodeMissing', node_title: 'x' },
        },
        node_errors: {},
      },
    };
    const err2 = await rejection(h.client().runPrompt(vhsWorkflow(), run()));
    expect(err2.details).toMatchObject({ errorType: 'missing_node_type', missingNodeType: 'KJNodeMissing' });
  });

  it('treats a 200 with node_errors as a rejection and removes the prompt', async () => {
    h.fake.nextPromptAnswer = {
      status: 200,
      nodeErrors: {
        '7': {
          errors: [
            {
              type: 'value_not_in_list',
              message: 'Value not in list',
              details: "lora: 'x' not in (list of length 31)",
              extra_info: { input_name: 'lora' },
            },
          ],
          dependent_outputs: ['3'],
          class_type: 'WanVideoLoraSelect',
        },
      },
    };
    h.fake.behaviour = { outcome: 'wait-for-interrupt' };
    const err = await rejection(h.client().runPrompt(vhsWorkflow(), run()));
    expect(err.code).toBe('WORKFLOW_REJECTED');
    expect(err.message).toContain('node 7 (WanVideoLoraSelect) input "lora"');
    const paths = h.fake.requests.map((r) => `${r.path} ${JSON.stringify(r.body)}`);
    expect(paths.some((p) => p.startsWith('/interrupt') && p.includes('prompt_id'))).toBe(true);
    expect(paths.some((p) => p.startsWith('/queue') && p.includes('delete'))).toBe(true);
  });

  it('maps execution_error to EXECUTION_FAILED with node id, type and exception', async () => {
    h.fake.behaviour = { outcome: 'error' };
    const err = await rejection(h.client().runPrompt(vhsWorkflow(), run()));
    expect(err.code).toBe('EXECUTION_FAILED');
    expect(err.message).toContain('node 2 (WanVideoSampler)');
    expect(err.message).toContain('RuntimeError: shape mismatch');
    expect(err.details).toMatchObject({ nodeId: '2', nodeType: 'WanVideoSampler', exceptionType: 'RuntimeError' });
  });

  it('recognises out-of-memory, reports OUT_OF_MEMORY and frees memory', async () => {
    h.fake.behaviour = { outcome: 'oom' };
    const err = await rejection(h.client().runPrompt(vhsWorkflow(), run()));
    expect(err.code).toBe('OUT_OF_MEMORY');
    // The job swaps the generic advice for one from its memory settings: the summary is the message without it.
    expect(err.message.startsWith(String(err.details.summary))).toBe(true);
    expect(err.details.summary).toMatch(/^Out of GPU memory in node \S+ \(\w+\): .+\.$/);
    expect(h.fake.requests.find((r) => r.path === '/free')?.body).toEqual({ unload_models: true, free_memory: true });
  });

  it('finishes from /history when the socket dropped mid-job and could not come back', async () => {
    const hold = deferred();
    h.fake.behaviour = { outcome: 'success', hold: hold.promise };
    const client = h.client();
    const done = client.runPrompt(vhsWorkflow(), run({ timeoutMs: 10_000 }));
    await h.fake.waitForEvent('progress');
    h.fake.refuseWebSockets = true;
    h.fake.dropSockets();
    hold.resolve();
    const result = await done;
    expect(videoOutputs(result.outputs)).toHaveLength(1);
    expect(h.fake.requests.filter((r) => r.path.startsWith('/history/')).length).toBeGreaterThan(0);
  });

  it('reconnects with the same clientId after a drop and checks /history and /queue', async () => {
    const hold = deferred();
    h.fake.behaviour = { outcome: 'success', hold: hold.promise };
    const clientIds: string[] = [];
    h.fake.onEvent((type, data) => {
      if (type === 'status' && typeof data.sid === 'string') clientIds.push(data.sid);
    });
    const done = h.client().runPrompt(vhsWorkflow(), run({ timeoutMs: 10_000 }));
    await h.fake.waitForEvent('progress');
    const reconnected = new Promise<void>((resolve) => {
      const off = h.fake.onEvent((type, data) => {
        if (type === 'status' && typeof data.sid === 'string') {
          off();
          resolve();
        }
      });
    });
    h.fake.dropSockets();
    await reconnected;
    await waitFor(() => h.fake.requests.some((r) => r.path === '/queue'));
    hold.resolve();
    await done;
    expect(clientIds).toHaveLength(2);
    expect(clientIds[1]).toBe(clientIds[0]);
  });

  it('fails with COMFY_CRASHED when ComfyUI dies mid-job', async () => {
    const hold = deferred();
    h.fake.behaviour = { outcome: 'success', hold: hold.promise };
    const done = h.client({ lostAfterMs: 300 }).runPrompt(vhsWorkflow(), run({ timeoutMs: 10_000 }));
    await h.fake.waitForEvent('progress');
    await h.fake.crash();
    const err = await rejection(done);
    expect(err.code).toBe('COMFY_CRASHED');
    hold.resolve();
  });

  it('fails with COMFY_CRASHED when the prompt vanished (not queued, no history) after a reconnect', async () => {
    const hold = deferred();
    h.fake.behaviour = { outcome: 'success', hold: hold.promise };
    const done = h.client().runPrompt(vhsWorkflow(), run({ timeoutMs: 10_000 }));
    await h.fake.waitForEvent('progress');
    // a restarted ComfyUI: same port, empty queue and history
    const port = h.fake.port;
    await h.fake.crash();
    const { FakeComfyUI } = await import('../fakes/comfyui');
    const reborn = await FakeComfyUI.start({ dirs: h.dirs, port });
    try {
      const err = await rejection(done);
      expect(err.code).toBe('COMFY_CRASHED');
      expect(err.message).toContain('lost the prompt');
    } finally {
      hold.resolve();
      await reborn.close();
    }
  });

  it('on timeout interrupts its own prompt, removes it from the queue and rejects with TIMEOUT', async () => {
    h.fake.behaviour = { outcome: 'wait-for-interrupt' };
    const err = await rejection(h.client().runPrompt(vhsWorkflow(), run({ timeoutMs: 300 })));
    expect(err.code).toBe('TIMEOUT');
    const interrupt = h.fake.requests.find((r) => r.path === '/interrupt')!;
    const sent = (h.fake.requests.find((r) => r.path === '/prompt')!.body as { prompt_id: string }).prompt_id;
    expect(interrupt.body).toEqual({ prompt_id: sent });
    expect(h.fake.requests.find((r) => r.path === '/queue' && r.body !== undefined)?.body).toEqual({ delete: [sent] });
    await waitFor(() => h.fake.historyOf(sent)?.status.status_str === 'error');
  });

  it('on cancel rejects with the signal reason (a WorkerError as given, else CANCELLED)', async () => {
    h.fake.behaviour = { outcome: 'wait-for-interrupt' };
    const ac = new AbortController();
    const p = h.client().runPrompt(vhsWorkflow(), run({ signal: ac.signal }));
    await h.fake.waitForEvent('progress');
    ac.abort(new Error('user'));
    expect((await rejection(p)).code).toBe('CANCELLED');

    const ac2 = new AbortController();
    const p2 = h.client().runPrompt(vhsWorkflow(), run({ signal: ac2.signal }));
    await h.fake.waitForEvent('progress');
    ac2.abort(new WorkerError('COMFY_CRASHED', 'supervisor saw the exit'));
    expect((await rejection(p2)).code).toBe('COMFY_CRASHED');
  });

  it('fails EXECUTION_FAILED when someone else interrupts the prompt', async () => {
    h.fake.behaviour = { outcome: 'wait-for-interrupt' };
    const p = h.client().runPrompt(vhsWorkflow(), run());
    await h.fake.waitForEvent('progress');
    await fetch(`${h.fake.url}/interrupt`, { method: 'POST', body: '{}' }); // someone else's untargeted interrupt
    const err = await rejection(p);
    expect(err.code).toBe('EXECUTION_FAILED');
    expect(err.message).toContain('interrupted');
  });

  it('abandons its prompt on a failure that is not a cancel: ComfyUI unanswering for lostAfterMs', async () => {
    h.fake.behaviour = { outcome: 'wait-for-interrupt' };
    const p = h.client({ idlePollIntervalMs: 20, lostAfterMs: 300 }).runPrompt(vhsWorkflow(), run());
    await h.fake.waitForEvent('progress');
    h.fake.historyAnswer = { status: 502, body: { error: 'bad gateway' } }; // alive, but /history fails
    const err = await rejection(p);
    expect(err.code).toBe('COMFY_CRASHED');
    const sent = (h.fake.requests.find((r) => r.path === '/prompt')!.body as { prompt_id: string }).prompt_id;
    expect(h.fake.requests.find((r) => r.path === '/interrupt')?.body).toEqual({ prompt_id: sent });
    expect(h.fake.requests.find((r) => r.path === '/queue' && r.body !== undefined)?.body).toEqual({ delete: [sent] });
    await waitFor(() => h.fake.historyOf(sent)?.status.status_str === 'error'); // the GPU is free for the next job
  });

  it('fails at once with INTERNAL (not COMFY_CRASHED after lostAfterMs) on a /history answer of another shape, and abandons the prompt', async () => {
    h.fake.behaviour = { outcome: 'wait-for-interrupt' };
    const p = h.client({ idlePollIntervalMs: 20, lostAfterMs: 60_000 }).runPrompt(vhsWorkflow(), run());
    await h.fake.waitForEvent('progress');
    const t0 = Date.now();
    h.fake.historyAnswer = { status: 200, body: { 'some-id': { outputs: 'not a map', status: 7 } } };
    const err = await rejection(p);
    expect(Date.now() - t0).toBeLessThan(10_000); // far below lostAfterMs (60 s), even on a busy machine
    expect(err.code).toBe('INTERNAL');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('GET /history');
    expect(err.message).toContain('some-id');
    expect(h.fake.requests.some((r) => r.path === '/interrupt')).toBe(true);
  });

  it('does not call a live ComfyUI crashed over one /history request that hangs (each poll has a deadline under lostAfterMs)', async () => {
    const hold = deferred();
    h.fake.behaviour = { outcome: 'success', hold: hold.promise };
    // a request deadline longer than lostAfterMs: one stuck poll would outlast it (each poll waits lostAfterMs / 3 = 1 s)
    const client = h.client({ idlePollIntervalMs: 20, lostAfterMs: 3000, requestTimeoutMs: 10_000 });
    const done = client.runPrompt(vhsWorkflow(), run());
    await h.fake.waitForEvent('progress');
    const historyReads = () => h.fake.requests.filter((r) => r.path.startsWith('/history/')).length;
    h.fake.stallHistory = 1;
    await waitFor(() => h.fake.stallHistory === 0);
    const stalledAt = historyReads();
    await waitFor(() => historyReads() > stalledAt + 1); // polling went on past the stuck request
    hold.resolve();
    const result = await done;
    expect(videoOutputs(result.outputs)).toHaveLength(1);
  });

  it('does not hang when the socket never opens: polls /history instead', async () => {
    h.fake.refuseWebSockets = true;
    const client = h.client({ socketOpenTimeoutMs: 50 });
    const result = await client.runPrompt(vhsWorkflow(), run({ timeoutMs: 20_000 }));
    expect(videoOutputs(result.outputs)).toHaveLength(1);
  });
});

describe('ComfySocket', () => {
  it('close() settles a pending open() at once, leaving no open timer behind', async () => {
    h.fake.refuseWebSockets = true;
    const socket = new ComfySocket({ baseUrl: h.fake.url, clientId: 'c1', logger: silentLogger, reconnectMinMs: 10, reconnectMaxMs: 20 });
    const opening = socket.open(60_000);
    socket.close();
    let timer: NodeJS.Timeout | undefined;
    const guard = new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still pending'), 1000)));
    await expect(Promise.race([opening, guard])).resolves.toBe(false);
    clearTimeout(timer);
  });
});

describe('ComfyClient files', () => {
  it('uploads a video to an external ComfyUI through /upload/image and returns the stored name (renamed on clash, reused when identical)', async () => {
    const src = path.join(h.root, 'pose.mp4');
    writeFileSync(src, FAKE_MP4);
    const client = h.client({ local: false });
    expect(await client.uploadInput({ path: src, name: 'pose-1.mp4' })).toBe('pose-1.mp4');
    writeFileSync(src, Buffer.concat([FAKE_MP4, Buffer.from('x')]));
    expect(await client.uploadInput({ path: src, name: 'pose-1.mp4' })).toBe('pose-1 (1).mp4');
    expect(readFileSync(path.join(h.dirs.input, 'pose-1 (1).mp4')).length).toBe(FAKE_MP4.length + 1);
    expect(await client.uploadInput({ path: src, name: 'pose-1.mp4' })).toBe('pose-1 (1).mp4'); // same bytes: reused
  });

  it('puts inputs straight into a local ComfyUI input folder, without HTTP or its upload size limit', async () => {
    const src = path.join(h.root, 'big-pose.mp4');
    writeFileSync(src, FAKE_MP4);
    const client = h.client();
    const before = h.fake.requests.length;
    expect(await client.uploadInput({ path: src, name: 'job-7_pose.mp4' })).toBe('job-7_pose.mp4');
    expect(readFileSync(path.join(h.dirs.input, 'job-7_pose.mp4'))).toEqual(FAKE_MP4);
    expect(h.fake.requests.slice(before).filter((r) => r.path.includes('/upload'))).toEqual([]);
    // The job's temp copy can go at once: ComfyUI's input stays until the job's cleanup.
    rmSync(src);
    expect(existsSync(path.join(h.dirs.input, 'job-7_pose.mp4'))).toBe(true);
    writeFileSync(src, FAKE_MP4);
    expect(await client.uploadInput({ path: src, name: '../escape.mp4' })).toBe('escape.mp4');
    expect(existsSync(path.join(h.dirs.input, 'escape.mp4'))).toBe(true);
  });

  it('cleanup deletes the job inputs, outputs and job folder, and never throws', async () => {
    const client = h.client();
    const result = await client.runPrompt(vhsWorkflow(), run());
    const video = videoOutputs(result.outputs)[0]!;
    const file = path.join(h.dirs.output, video.subfolder, video.filename);
    const png = file.replace(/\.mp4$/, '.png'); // VHS's first-frame image, not listed as an output
    expect(existsSync(png)).toBe(true);
    await client.cleanup({
      inputs: ['ref.png', '../escape.txt'],
      outputs: result.outputs,
      jobFolder: result.jobFolder,
      promptId: result.promptId,
    });
    expect(existsSync(file)).toBe(false);
    expect(existsSync(png)).toBe(false);
    expect(existsSync(path.join(h.dirs.input, 'ref.png'))).toBe(false);
    expect(h.fake.historyOf(result.promptId)).toBeUndefined();
    await h.fake.close();
    await expect(client.cleanup({ inputs: [], outputs: [], promptId: 'x' })).resolves.toBeUndefined();
  });

  it('saveOutput reports OUTPUT_MISSING for a listed file that is gone, local or external', async () => {
    for (const local of [true, false]) {
      const err = await rejection(h.client({ local }).saveOutput({ filename: 'nope.mp4', subfolder: '', type: 'output' }, h.root));
      expect(err.code).toBe('OUTPUT_MISSING');
      expect(err.message).toContain('nope.mp4');
    }
    expect(existsSync(path.join(h.root, 'nope.mp4'))).toBe(false);
  });
});

function client_videos(outputs: { key: string; type: string }[]) {
  return outputs.filter((o) => o.key === 'gifs' && o.type === 'output');
}

async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
