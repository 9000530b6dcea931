import { describe, expect, it } from '@jest/globals';
import { createSteadyDancerJob, safeJobId } from '../../src/job/pipeline';
import type { ComfySession, ComfyVideo, InputsPort, JobDeps, StoragePort } from '../../src/job/ports';
import type { ProgressUpdate } from '../../src/job/progress';
import { WorkerError } from '../../src/lib/errors';
import { silentLogger } from '../../src/lib/logger';
import { FIELD_LIMITS, TEST_VARIANTS } from './limits';

type Events = string[];

function setup(
  overrides: {
    session?: Partial<ComfySession>;
    inputs?: Partial<InputsPort>;
    storage?: Partial<StoragePort>;
    missing?: string[];
    unsupported?: (variant: 'turbo' | 'quality') => string | undefined;
    healthy?: boolean;
    ready?: () => Promise<void>;
    outOfMemoryAdvice?: (job: { width: number; height: number; num_frames: number }) => string;
  } = {},
) {
  const events: Events = [];
  const prompts: Record<string, unknown>[] = [];
  const video: ComfyVideo = { filename: 'steadydancer_00001.mp4', subfolder: 'job-1', type: 'output' };
  const session: ComfySession = {
    uploadInput: async (f) => {
      events.push(`upload ${f.name}`);
      return f.name;
    },
    runPrompt: async (prompt, opts) => {
      prompts.push(prompt);
      events.push('run');
      opts.onProgress({ percent: 50, nodeType: 'WanVideoSampler', step: 2, steps: 4 });
      return { promptId: 'p1', videos: [video] };
    },
    localPath: async (v, dir) => `${dir}/${v.filename}`,
    cleanup: async (files) => {
      events.push(`comfy cleanup ${files.inputs.length} inputs ${files.videos.length} videos`);
    },
    ...overrides.session,
  };
  let clock = 1000;
  const deps: JobDeps<'turbo' | 'quality'> = {
    workflow: {
      variants: TEST_VARIANTS,
      defaultVariant: 'turbo',
      fieldLimits: FIELD_LIMITS,
      randomSeed: () => 42,
      missingModels: (v) => (v === 'quality' ? (overrides.missing ?? []) : []),
      ...(overrides.unsupported ? { unsupportedVariant: overrides.unsupported } : {}),
      buildPrompt: (params) => ({ params }),
      ...(overrides.outOfMemoryAdvice ? { outOfMemoryAdvice: overrides.outOfMemoryAdvice } : {}),
    },
    inputs: {
      createJobFiles: async (id) => {
        events.push(`files ${id}`);
        return { dir: `/tmp/${id}`, cleanup: async () => void events.push('files cleanup') };
      },
      fetch: async (field, _source, _expect, _files, opts) => {
        events.push(`fetch ${field}`);
        opts.signal.throwIfAborted();
        return { path: `/tmp/${field}`, bytes: 10, ext: field === 'pose_video' ? '.mp4' : '.png' };
      },
      ...overrides.inputs,
    },
    comfy: {
      ready: async () => {
        events.push('ready?');
        await overrides.ready?.();
        events.push('ready');
        return session;
      },
      get healthy() {
        return overrides.healthy ?? true;
      },
    },
    storage: {
      jobBucket: async (s3Config) => {
        events.push('job bucket');
        const { bucketName } = s3Config as { bucketName: string };
        return { bucket: bucketName, accessKeyId: 'a', secretAccessKey: 's' };
      },
      put: async (file, opts) => {
        if (opts.bucket) events.push(`put into ${opts.bucket.bucket}`);
        events.push(`put ${file.jobId}/${file.name}`);
        return {
          url: `https://cdn.example/${file.keyPrefix ?? ''}${file.jobId}/${file.name}`,
          bucket: 'b',
          key: `${file.jobId}/${file.name}`,
          content_type: 'video/mp4',
          bytes: 1234,
        };
      },
      ...overrides.storage,
    },
    probe: async () => ({ width: 480, height: 832, frames: 81, fps: 16, bytes: 1234 }),
    logger: silentLogger,
    now: () => (clock += 10),
  };
  const progress: ProgressUpdate[] = [];
  const controller = new AbortController();
  const rt = { signal: controller.signal, progress: (p: ProgressUpdate) => void progress.push(p), logger: silentLogger };
  return { job: createSteadyDancerJob(deps), events, prompts, progress, rt, controller };
}

const input = { reference_image: 'https://example.com/p.png', pose_video: 'https://example.com/d.mp4' };

describe('SteadyDancer job pipeline', () => {
  it('runs a job end to end and returns URLs, metadata, seed and timings', async () => {
    const t = setup();
    const out = await t.job({ id: 'job-1', input: { ...input, output: { key_prefix: 'dances/' } } }, t.rt);
    expect(out).toEqual({
      videos: [
        {
          url: 'https://cdn.example/dances/job-1/steadydancer_00001.mp4',
          bucket: 'b',
          key: 'job-1/steadydancer_00001.mp4',
          content_type: 'video/mp4',
          bytes: 1234,
          width: 480,
          height: 832,
          frames: 81,
          fps: 16,
        },
      ],
      variant: 'turbo',
      seed: 42,
      timings_ms: expect.objectContaining({ total: expect.any(Number), inference: expect.any(Number) }),
    });
    const params = (t.prompts[0] as { params: Record<string, unknown> }).params;
    expect(params).toMatchObject({
      referenceImageName: 'job-1_reference.png',
      poseVideoName: 'job-1_pose.mp4',
      filenamePrefix: 'steadydancer',
      seed: 42,
      steps: 4,
    });
    // Cleanup of ComfyUI's files and the job's temp folder happens after the upload.
    expect(t.events.slice(-3)).toEqual(['put job-1/steadydancer_00001.mp4', 'comfy cleanup 2 inputs 1 videos', 'files cleanup']);
    expect(t.progress.map((p) => p.stage)).toEqual(['inputs', 'starting', 'queued', 'sampling', 'uploading']);
    expect(t.progress[3]).toMatchObject({ step: 2, steps: 4 });
    const percents = t.progress.map((p) => p.percent);
    expect([...percents].sort((a, b) => a - b)).toEqual(percents);
  });

  it("takes inference as ComfyUI's own execution time when the session reports it, else the whole call", async () => {
    const own = setup({
      session: {
        runPrompt: async () => ({ promptId: 'p1', videos: [{ filename: 'a.mp4', subfolder: '', type: 'output' }], executionMs: 1234 }),
      },
    });
    const out = await own.job({ id: 'job-1', input }, own.rt);
    expect(out).toMatchObject({ timings_ms: { inference: 1234 } });
    // the test clock advances 10 ms per reading: queued → inferred spans one reading
    const span = setup({
      session: { runPrompt: async () => ({ promptId: 'p1', videos: [{ filename: 'a.mp4', subfolder: '', type: 'output' }] }) },
    });
    expect(await span.job({ id: 'job-1', input }, span.rt)).toMatchObject({ timings_ms: { inference: 10 } });
  });

  it('fetches inputs while ComfyUI is still booting', async () => {
    let boot!: () => void;
    const booted = new Promise<void>((r) => (boot = r));
    const t = setup({ ready: () => booted });
    const run = t.job({ id: 'j', input }, t.rt);
    await new Promise((r) => setTimeout(r, 20));
    expect(t.events).toEqual(expect.arrayContaining(['ready?', 'fetch reference_image', 'fetch pose_video']));
    expect(t.events).not.toContain('ready');
    boot();
    expect(await run).toHaveProperty('videos');
  });

  it('rejects bad input with INVALID_INPUT before touching anything', async () => {
    const t = setup();
    const out = await t.job({ id: 'j', input: { ...input, width: 500 } }, t.rt);
    expect(out).toEqual({
      error:
        'INVALID_INPUT: width: must be a whole number from 256 to 1280 and a multiple of 16, got 500 (send 496, or leave it out for the default 480)',
    });
    expect(t.events).toEqual([]);
  });

  it('refuses a variant this GPU cannot run before fetching anything, naming the variant field', async () => {
    const t = setup({ unsupported: (v) => (v === 'quality' ? '"quality" needs what this GPU lacks' : undefined) });
    const out = await t.job({ id: 'j', input: { ...input, variant: 'quality' } }, t.rt);
    expect(out).toEqual({ error: 'INVALID_INPUT: variant: "quality" needs what this GPU lacks' });
    expect(t.events.filter((e) => e.startsWith('fetch'))).toEqual([]);
    expect((await t.job({ id: 'k', input }, t.rt)) as object).not.toHaveProperty('error');
  });

  it('fails a variant whose model files are missing with MODEL_MISSING naming them', async () => {
    const t = setup({ missing: ['diffusion_models/x.safetensors'] });
    const out = await t.job({ id: 'j', input: { ...input, variant: 'quality' } }, t.rt);
    expect(out).toEqual({ error: expect.stringMatching(/^MODEL_MISSING: variant "quality" needs .*diffusion_models\/x\.safetensors/) });
  });

  it('a failed input fetch aborts the other one and still cleans up', async () => {
    let poseAborted = false;
    const t = setup({
      inputs: {
        fetch: async (field, _s, _e, _f, opts) => {
          if (field === 'reference_image') throw new WorkerError('INPUT_FETCH_FAILED', 'reference_image: HTTP 404 from example.com');
          await new Promise<void>((resolve) => opts.signal.addEventListener('abort', () => resolve()));
          await new Promise((r) => setTimeout(r, 20)); // still writing when the other fetch failed
          poseAborted = true;
          t.events.push('pose fetch settled');
          throw opts.signal.reason;
        },
      },
    });
    const out = await t.job({ id: 'j', input }, t.rt);
    expect(out).toEqual({ error: 'INPUT_FETCH_FAILED: reference_image: HTTP 404 from example.com' });
    expect(poseAborted).toBe(true);
    // The temp folder is removed only once no fetch can still write into it.
    expect(t.events).toContain('pose fetch settled');
    expect(t.events.indexOf('pose fetch settled')).toBeLessThan(t.events.indexOf('files cleanup'));
  });

  it('asks RunPod to refresh the worker when ComfyUI cannot be recovered', async () => {
    const t = setup({
      healthy: false,
      session: { runPrompt: async () => Promise.reject(new WorkerError('COMFY_CRASHED', 'ComfyUI exited with code 137')) },
    });
    expect(await t.job({ id: 'j', input }, t.rt)).toEqual({ error: 'COMFY_CRASHED: ComfyUI exited with code 137', refresh_worker: true });
    expect(t.events).toContain('comfy cleanup 2 inputs 0 videos');
  });

  it('keeps a healthy worker after an OOM', async () => {
    const t = setup({
      session: {
        runPrompt: async () => Promise.reject(new WorkerError('OUT_OF_MEMORY', 'CUDA out of memory at node 50 (WanVideoSampler)')),
      },
    });
    expect(await t.job({ id: 'j', input }, t.rt)).toEqual({ error: 'OUT_OF_MEMORY: CUDA out of memory at node 50 (WanVideoSampler)' });
  });

  it("replaces ComfyUI's generic out-of-memory advice with the advice for the settings the job ran with", async () => {
    const seen: unknown[] = [];
    const oom = new WorkerError(
      'OUT_OF_MEMORY',
      'Out of GPU memory in node 50 (WanVideoSampler): CUDA out of memory. Use a smaller size.',
      {
        details: { nodeId: '50', summary: 'Out of GPU memory in node 50 (WanVideoSampler): CUDA out of memory.' },
      },
    );
    const t = setup({
      session: { runPrompt: async () => Promise.reject(oom) },
      outOfMemoryAdvice: (job) => {
        seen.push(job);
        return 'Try: set VRAM_MODE=minimal.';
      },
    });
    expect(await t.job({ id: 'j', input: { ...input, width: 512, num_frames: 161 } }, t.rt)).toEqual({
      error: 'OUT_OF_MEMORY: Out of GPU memory in node 50 (WanVideoSampler): CUDA out of memory. Try: set VRAM_MODE=minimal.',
    });
    expect(seen).toEqual([{ width: 512, height: 832, num_frames: 161 }]);
  });

  it('leaves other failures alone when advice is available', async () => {
    const t = setup({
      session: { runPrompt: async () => Promise.reject(new WorkerError('EXECUTION_FAILED', 'node 41 failed: no person')) },
      outOfMemoryAdvice: () => 'never used',
    });
    expect(await t.job({ id: 'j', input }, t.rt)).toEqual({ error: 'EXECUTION_FAILED: node 41 failed: no person' });
  });

  it('ends a cancelled job as CANCELLED whatever step noticed', async () => {
    const t = setup({
      session: {
        runPrompt: async () => {
          t.controller.abort(new WorkerError('CANCELLED', 'the job was cancelled'));
          throw new Error('interrupted');
        },
      },
    });
    expect(await t.job({ id: 'j', input }, t.rt)).toEqual({ error: 'CANCELLED: the job was cancelled' });
  });

  it('reports OUTPUT_MISSING when the workflow wrote no video', async () => {
    const t = setup({ session: { runPrompt: async () => ({ promptId: 'p', videos: [] }) } });
    expect(await t.job({ id: 'j', input }, t.rt)).toEqual({ error: expect.stringMatching(/^OUTPUT_MISSING: /) });
  });

  it('never reports a URL for a failed upload', async () => {
    const t = setup({ storage: { put: async () => Promise.reject(new WorkerError('UPLOAD_FAILED', 'bucket b: access denied')) } });
    expect(await t.job({ id: 'j', input }, t.rt)).toEqual({ error: 'UPLOAD_FAILED: bucket b: access denied' });
  });

  it("checks a job's s3Config before any work and hands its bucket to the inputs and the upload", async () => {
    const buckets: (string | undefined)[] = [];
    const t = setup({
      inputs: {
        fetch: async (field, _s, _e, _f, opts) => {
          buckets.push(opts.bucket?.bucket);
          return { path: `/tmp/${field}`, bytes: 10, ext: '.png' };
        },
      },
    });
    const out = await t.job({ id: 'j', input, s3Config: { bucketName: 'theirs' } }, t.rt);
    expect(out).toHaveProperty('videos');
    expect(t.events[0]).toBe('job bucket');
    expect(buckets).toEqual(['theirs', 'theirs']);
    expect(t.events).toContain('put into theirs');
  });

  it('fails a refused s3Config with its INVALID_INPUT before fetching or touching ComfyUI', async () => {
    const refused = new WorkerError('INVALID_INPUT', 's3Config.endpointUrl: this endpoint cannot be used');
    const t = setup({ storage: { jobBucket: async () => Promise.reject(refused) } });
    expect(await t.job({ id: 'j', input, s3Config: { endpointUrl: 'http://127.0.0.1' } }, t.rt)).toEqual({
      error: 'INVALID_INPUT: s3Config.endpointUrl: this endpoint cannot be used',
    });
    expect(t.events).toEqual([]);
  });

  it('makes job ids safe as file names', () => {
    expect(safeJobId('sync-1f2e/../x y')).toBe('sync-1f2e____x_y');
    expect(safeJobId('')).toBe('job');
  });
});
