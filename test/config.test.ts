import { describe, expect, it } from '@jest/globals';
import { loadConfig } from '../src/config';
import { isWorkerError } from '../src/lib/errors';

describe('loadConfig', () => {
  it('defaults to local mode with documented defaults', () => {
    const c = loadConfig({});
    expect(c.mode).toBe('local');
    expect(c.runpod.pingIntervalMs).toBe(10_000);
    expect(c.runpod.concurrency).toBe(1);
    expect(c.comfy.dir).toBe('/comfyui');
    expect(c.comfy.python).toBe('python3');
    expect(c.bucket.region).toBe('auto');
    expect(c.bucket.presignExpiresS).toBe(604_800);
    expect(c.paths.modelsDir).toBe('/comfyui/models');
    expect(c.media.allowPrivateUrls).toBe(false);
    expect(Object.isFrozen(c.bucket)).toBe(true);
  });

  it('is production iff RUNPOD_WEBHOOK_GET_JOB is set', () => {
    const c = loadConfig({ RUNPOD_WEBHOOK_GET_JOB: 'https://api.runpod.ai/v2/ep/job-take/$ID', RUNPOD_WEBHOOK_PING: 'PING_NOT_SET' });
    expect(c.mode).toBe('production');
    expect(c.runpod.pingUrl).toBeUndefined();
  });

  it('parses booleans, numbers, args and RunPod log levels', () => {
    const c = loadConfig({
      ALLOW_PRIVATE_URLS: 'true',
      WORKER_CONCURRENCY: '2',
      COMFYUI_ARGS: '--highvram --reserve-vram 2 --extra "a b"',
      RUNPOD_LOG_LEVEL: 'WARN',
    });
    expect(c.media.allowPrivateUrls).toBe(true);
    expect(c.runpod.concurrency).toBe(2);
    expect(c.comfy.extraArgs).toEqual(['--highvram', '--reserve-vram', '2', '--extra', 'a b']);
    expect(c.logLevel).toBe('warn');
  });

  it('reads the input content limits, with documented defaults', () => {
    expect(loadConfig({}).media.limits).toEqual({
      imageMaxSide: 16_384,
      imageMaxMegapixels: 64,
      videoMaxSide: 4096,
      videoMaxSeconds: 600,
      videoMaxFrames: 36_000,
    });
    const c = loadConfig({
      MAX_INPUT_IMAGE_SIDE: '4096',
      MAX_INPUT_IMAGE_MEGAPIXELS: '12',
      MAX_INPUT_VIDEO_SIDE: '1920',
      MAX_INPUT_VIDEO_SECONDS: '60',
      MAX_INPUT_VIDEO_FRAMES: '1800',
    });
    expect(c.media.limits).toEqual({
      imageMaxSide: 4096,
      imageMaxMegapixels: 12,
      videoMaxSide: 1920,
      videoMaxSeconds: 60,
      videoMaxFrames: 1800,
    });
    expect(() => loadConfig({ MAX_INPUT_VIDEO_SECONDS: '0' })).toThrow(/MAX_INPUT_VIDEO_SECONDS: expected a whole number from 1/);
  });

  it('reads the weights and the memory settings: precisions of the manifest, VRAM_MODE, BLOCK_SWAP', () => {
    expect(loadConfig({}).modelPrecision).toBe('fp8');
    expect(loadConfig({}).engine).toMatchObject({ vram: 'auto', blockSwap: 'auto' });
    const c = loadConfig({ MODEL_PRECISION: 'gguf-q5_k_m', VRAM_MODE: 'minimal', BLOCK_SWAP: '16' });
    expect(c.modelPrecision).toBe('gguf-q5_k_m');
    expect(c.engine).toMatchObject({ vram: 'minimal', blockSwap: 16 });
    expect(loadConfig({ BLOCK_SWAP: 'AUTO' }).engine.blockSwap).toBe('auto');
    expect(loadConfig({ BLOCK_SWAP: '0' }).engine.blockSwap).toBe(0);
    expect(() => loadConfig({ BLOCK_SWAP: '41' })).toThrow(/BLOCK_SWAP: expected auto or a whole number of blocks from 0 to 40, got "41"/);
    expect(() => loadConfig({ BLOCK_SWAP: 'some' })).toThrow(/BLOCK_SWAP/);
    expect(() => loadConfig({ MODEL_PRECISION: 'gguf-q3_k' })).toThrow(/MODEL_PRECISION/);
    expect(() => loadConfig({ VRAM_MODE: 'tiny' })).toThrow(/VRAM_MODE/);
  });

  it('caches umT5 embeddings beside the models, one folder per encoder file, passed to ComfyUI; off when asked or external', () => {
    const baked = loadConfig({ MODELS_DIR: '/comfyui/models', HOME: '/root' });
    expect(baked.textEmbedCache).toEqual({ dir: '/comfyui/text-embeds/umt5-xxl-bf16-4fa971faf306', maxMb: 2048 });
    expect(baked.comfy.env).toEqual({
      MODELS_DIR: '/comfyui/models',
      HOME: '/root',
      STEADYDANCER_TEXT_EMBED_DIR: '/comfyui/text-embeds/umt5-xxl-bf16-4fa971faf306',
      STEADYDANCER_TEXT_EMBED_MAX_MB: '2048',
    });
    expect(loadConfig({ MODELS_DIR: '/runpod-volume/models' }).textEmbedCache?.dir).toBe(
      '/runpod-volume/text-embeds/umt5-xxl-bf16-4fa971faf306',
    );
    const own = loadConfig({ TEXT_EMBED_CACHE_DIR: '/cache/embeds', TEXT_EMBED_CACHE_MAX_MB: '64' }).textEmbedCache;
    expect(own).toEqual({ dir: '/cache/embeds/umt5-xxl-bf16-4fa971faf306', maxMb: 64 });
    for (const off of [{ TEXT_EMBED_CACHE_DIR: 'off' }, { COMFYUI_URL: 'http://comfy:8188' }]) {
      expect(loadConfig(off).textEmbedCache).toBeUndefined();
      expect(loadConfig(off).comfy.env).toBeUndefined();
    }
    expect(() => loadConfig({ TEXT_EMBED_CACHE_MAX_MB: '1' })).toThrow(/TEXT_EMBED_CACHE_MAX_MB/);
  });

  it("turns the ComfyUI hook's prepared-weight cache off under TORCH_COMPILE, and only then", () => {
    expect(loadConfig({ TORCH_COMPILE: 'true' }).comfy.env?.STEADYDANCER_WEIGHT_CACHE).toBe('off');
    expect(loadConfig({ TORCH_COMPILE: 'true', TEXT_EMBED_CACHE_DIR: 'off' }).comfy.env).toEqual({
      TORCH_COMPILE: 'true',
      TEXT_EMBED_CACHE_DIR: 'off',
      STEADYDANCER_WEIGHT_CACHE: 'off',
    });
    expect(loadConfig({}).comfy.env?.STEADYDANCER_WEIGHT_CACHE).toBeUndefined();
  });

  it('prefetches model files unless PREFETCH_MODELS=false', () => {
    expect(loadConfig({}).prefetchModels).toBe(true);
    expect(loadConfig({ PREFETCH_MODELS: 'false' }).prefetchModels).toBe(false);
  });

  it('leaves torch.compile off unless TORCH_COMPILE turns it on', () => {
    expect(loadConfig({}).engine.compile).toBe(false);
    expect(loadConfig({ TORCH_COMPILE: 'on' }).engine.compile).toBe(true);
    expect(loadConfig({ TORCH_COMPILE: 'false' }).engine.compile).toBe(false);
    expect(() => loadConfig({ TORCH_COMPILE: 'fast' })).toThrow(/TORCH_COMPILE/);
  });

  it('names every bad variable in one CONFIG_INVALID error', () => {
    try {
      loadConfig({ PRESIGN_EXPIRES_S: '604801', ALLOW_PRIVATE_URLS: 'maybe', COMFYUI_URL: 'ftp://x' });
      throw new Error('expected a throw');
    } catch (err) {
      expect(isWorkerError(err, 'CONFIG_INVALID')).toBe(true);
      const msg = (err as Error).message;
      expect(msg).toContain('PRESIGN_EXPIRES_S');
      expect(msg).toContain('ALLOW_PRIVATE_URLS');
      expect(msg).toContain('COMFYUI_URL');
    }
  });
});

describe('upload and job-bucket settings', () => {
  it('default to a 120 s retry budget, a 15 s idle timeout and no allow-list', () => {
    const c = loadConfig({});
    expect(c.bucket).toMatchObject({ uploadRetryBudgetMs: 120_000, requestIdleTimeoutMs: 15_000, allowedJobEndpoints: [] });
  });

  it('parse UPLOAD_RETRY_BUDGET_S, UPLOAD_IDLE_TIMEOUT_S and a comma list of ALLOWED_S3_ENDPOINTS', () => {
    const c = loadConfig({
      UPLOAD_RETRY_BUDGET_S: '300',
      UPLOAD_IDLE_TIMEOUT_S: '15',
      ALLOWED_S3_ENDPOINTS: ' https://acc.r2.cloudflarestorage.com , *.r2.cloudflarestorage.com,,minio.lan:9000 ',
    });
    expect(c.bucket.uploadRetryBudgetMs).toBe(300_000);
    expect(c.bucket.requestIdleTimeoutMs).toBe(15_000);
    expect(c.bucket.allowedJobEndpoints).toEqual(['https://acc.r2.cloudflarestorage.com', '*.r2.cloudflarestorage.com', 'minio.lan:9000']);
  });

  it('refuses a bad allow-list entry or timeout as CONFIG_INVALID naming the variable and the entry', () => {
    try {
      loadConfig({ ALLOWED_S3_ENDPOINTS: 'https://ok.example.com,ftp://nope', UPLOAD_IDLE_TIMEOUT_S: '0' });
      throw new Error('expected a throw');
    } catch (err) {
      expect(isWorkerError(err, 'CONFIG_INVALID')).toBe(true);
      expect((err as Error).message).toContain('ALLOWED_S3_ENDPOINTS: "ftp://nope" is not an http(s):// URL prefix or a host');
      expect((err as Error).message).toContain('UPLOAD_IDLE_TIMEOUT_S');
    }
  });
});

describe('README configuration table', () => {
  it('documents exactly the variables loadConfig reads', async () => {
    const { readFileSync } = await import('node:fs');
    const { ENV_VARS } = await import('../src/config');
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const table = readme.slice(readme.indexOf('<!-- env-table'));
    const documented: string[] = [];
    for (const row of table.split('\n').slice(3)) {
      if (!row.startsWith('|')) break;
      documented.push(...[...(row.split('|')[1] ?? '').matchAll(/`([A-Z0-9_]+)`/g)].map((m) => m[1] as string));
    }
    expect(documented.sort()).toEqual([...ENV_VARS].sort());
  });
});
