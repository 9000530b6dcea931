// Every environment variable the worker reads, parsed once. Nothing else touches process.env.
// loadConfig does no I/O: it only validates and returns a frozen object that handler/ hands out
// in slices (the runtime gets `runpod`, the ComfyUI supervisor gets `comfy`, and so on).
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import type { ComfySettings } from './comfy';
import type { BlockSwapPreference } from './gpu';
import { ATTENTION_PREFERENCES, type AttentionPreference } from './gpu/engine-settings';
import { VRAM_PREFERENCES, type VramPreference } from './gpu/memory-plan';
import type { JobErrorCode } from './job/errors';
import { WorkerError } from './lib/errors';
import { LOG_LEVELS, type LogLevel } from './lib/logger';
import type { MediaLimits } from './media';
import type { RuntimeSettings } from './runpod';
import type { WorkerBucketSettings } from './s3';
import { parseAllowedEndpoint } from './s3/endpoint-guard';
import { MODEL_BLOCKS } from './workflow/build';
import { PRECISIONS, textEncoderKey, type Precision } from './workflow/manifest';

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

const bool = (fallback: boolean) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return fallback;
      const s = v.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(s)) return true;
      if (['0', 'false', 'no', 'off'].includes(s)) return false;
      ctx.addIssue({ code: 'custom', message: `expected true/false, got "${v}"` });
      return z.NEVER;
    });

const int = (fallback: number, min: number, max: number) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return fallback;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `expected a whole number from ${min} to ${max}, got "${v}"` });
        return z.NEVER;
      }
      return n;
    });

/** A comma-separated list; every entry must pass `valid` (its message names the entry). */
const list = (valid: (entry: string) => boolean, expected: string) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      const entries = (v ?? '')
        .split(',')
        .map((e) => e.trim())
        .filter(Boolean);
      for (const entry of entries.filter((e) => !valid(e))) ctx.addIssue({ code: 'custom', message: `"${entry}" is not ${expected}` });
      return entries;
    });

/** `auto` (the card table) or a number of transformer blocks to swap, 0 to MODEL_BLOCKS. */
const blockSwap = z
  .string()
  .optional()
  .transform((v, ctx): BlockSwapPreference => {
    if (v === undefined || v.trim() === '' || v.trim().toLowerCase() === 'auto') return 'auto';
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > MODEL_BLOCKS) {
      ctx.addIssue({ code: 'custom', message: `expected auto or a whole number of blocks from 0 to ${MODEL_BLOCKS}, got "${v}"` });
      return z.NEVER;
    }
    return n;
  });

/** RunPod's levels (NOTSET TRACE DEBUG INFO WARN ERROR or 0-5) mapped onto ours. */
function parseLogLevel(v: string | undefined): LogLevel {
  const s = (v ?? '').trim().toUpperCase();
  if (['', 'NOTSET', 'TRACE', 'DEBUG', '0', '1', '2'].includes(s)) return s === '' ? 'info' : 'debug';
  if (['INFO', '3'].includes(s)) return 'info';
  if (['WARN', 'WARNING', '4'].includes(s)) return 'warn';
  if (['ERROR', '5'].includes(s)) return 'error';
  const lower = s.toLowerCase() as LogLevel;
  return LOG_LEVELS.includes(lower) ? lower : 'info';
}

const EnvSchema = z.object({
  RUNPOD_WEBHOOK_GET_JOB: optionalString,
  RUNPOD_WEBHOOK_POST_OUTPUT: optionalString,
  RUNPOD_WEBHOOK_POST_STREAM: optionalString,
  RUNPOD_WEBHOOK_PING: optionalString,
  RUNPOD_AI_API_KEY: optionalString,
  RUNPOD_POD_ID: optionalString,
  RUNPOD_POD_HOSTNAME: optionalString,
  RUNPOD_PING_INTERVAL: int(10_000, 0, 3_600_000),
  RUNPOD_ENDPOINT_ID: optionalString,
  RUNPOD_LOG_LEVEL: optionalString,
  RUNPOD_DEBUG_LEVEL: optionalString,
  WORKER_CONCURRENCY: int(1, 1, 64),
  REFRESH_WORKER: bool(false),
  SHUTDOWN_GRACE_S: int(20, 0, 3600),
  // 30 s under RunPod's default execution timeout (600 s), which stops the worker: the job fails cleanly
  // with TIMEOUT and is posted first. Raise both together.
  JOB_TIMEOUT_S: int(570, 5, 7 * 24 * 3600),

  COMFYUI_DIR: optionalString,
  COMFYUI_PYTHON: optionalString,
  COMFYUI_URL: optionalString.pipe(z.url({ protocol: /^https?$/ }).optional()),
  COMFYUI_PORT: int(8188, 1, 65535),
  COMFYUI_ARGS: optionalString,
  COMFYUI_STARTUP_TIMEOUT_S: int(600, 1, 3600),
  COMFYUI_EXTRA_MODEL_PATHS_CONFIG: optionalString,

  BUCKET_ENDPOINT_URL: optionalString.pipe(z.url({ protocol: /^https?$/ }).optional()),
  BUCKET_ACCESS_KEY_ID: optionalString,
  BUCKET_SECRET_ACCESS_KEY: optionalString,
  BUCKET_NAME: optionalString,
  BUCKET_REGION: optionalString,
  BUCKET_KEY_PREFIX: optionalString,
  BUCKET_PUBLIC_URL: optionalString.pipe(z.url({ protocol: /^https?$/ }).optional()),
  PRESIGN_EXPIRES_S: int(604_800, 1, 604_800),
  ALLOWED_S3_ENDPOINTS: list(
    (e) => parseAllowedEndpoint(e) !== undefined,
    'an http(s):// URL prefix or a host (host, host:port, *.domain)',
  ),
  UPLOAD_RETRY_BUDGET_S: int(120, 0, 24 * 3600),
  UPLOAD_IDLE_TIMEOUT_S: int(15, 1, 3600),

  OUTPUT_DIR: optionalString,
  WORK_DIR: optionalString,
  MODELS_DIR: optionalString,
  MODEL_PRECISION: z.enum(PRECISIONS).default('fp8'),
  FFPROBE_PATH: optionalString,
  ATTENTION_MODE: z.enum(ATTENTION_PREFERENCES).default('auto'),
  VRAM_MODE: z.enum(VRAM_PREFERENCES).default('auto'),
  BLOCK_SWAP: blockSwap,
  TORCH_COMPILE: bool(false),
  PREFETCH_MODELS: bool(true),
  TEXT_EMBED_CACHE_DIR: optionalString,
  TEXT_EMBED_CACHE_MAX_MB: int(2048, 16, 1_048_576),
  GPU_CHECK_SCRIPT: optionalString,
  MAX_INPUT_BYTES: int(500 * 1024 * 1024, 1, 2 ** 40),
  // Input content limits: far above what a job uses (outputs are at most 1280 px; at most 321 frames
  // at 16 fps, about 20 s, are read) and below what decodes badly (64 MP stays under Pillow's 89 MP
  // decompression-bomb warning). They stop hostile headers before ComfyUI allocates anything.
  MAX_INPUT_IMAGE_SIDE: int(16_384, 16, 65_535),
  MAX_INPUT_IMAGE_MEGAPIXELS: int(64, 1, 4096),
  MAX_INPUT_VIDEO_SIDE: int(4096, 16, 65_535),
  MAX_INPUT_VIDEO_SECONDS: int(600, 1, 86_400),
  MAX_INPUT_VIDEO_FRAMES: int(36_000, 1, 10_000_000),
  ALLOW_PRIVATE_URLS: bool(false),
});

/** Every variable loadConfig reads (the README's configuration table is checked against it). */
export const ENV_VARS: readonly string[] = Object.keys(EnvSchema.shape);

export interface BucketConfig extends WorkerBucketSettings {
  readonly keyPrefix: string;
  readonly publicUrl: string | undefined;
  readonly presignExpiresS: number;
  /** ALLOWED_S3_ENDPOINTS: when non-empty, the only endpoints a job's `s3Config` may name. */
  readonly allowedJobEndpoints: readonly string[];
  /** UPLOAD_RETRY_BUDGET_S: how long an upload retries while no S3 request succeeds. */
  readonly uploadRetryBudgetMs: number;
  /** UPLOAD_IDLE_TIMEOUT_S: an S3 request silent this long (either way) is cut. */
  readonly requestIdleTimeoutMs: number;
}

export interface Config {
  readonly mode: 'production' | 'local';
  readonly logLevel: LogLevel;
  /** The modules' own settings types: config depends on the modules, not the other way round. */
  readonly runpod: RuntimeSettings;
  readonly comfy: ComfySettings;
  readonly bucket: BucketConfig;
  readonly paths: {
    readonly outputDir: string;
    readonly workDir: string;
    readonly modelsDir: string;
  };
  readonly media: {
    readonly maxInputBytes: number;
    readonly allowPrivateUrls: boolean;
    readonly ffprobePath: string;
    /** What an input may hold: pixels of the image, size, length and frames of the video. */
    readonly limits: MediaLimits;
  };
  /** PREFETCH_MODELS: read the default variant's model files into the page cache while ComfyUI boots. */
  readonly prefetchModels: boolean;
  /**
   * Where the ComfyUI hook keeps umT5 prompt embeddings on disk (one folder per text encoder file), and
   * how large that folder may grow; undefined when off (TEXT_EMBED_CACHE_DIR=off, or COMFYUI_URL: no hook).
   */
  readonly textEmbedCache: { readonly dir: string; readonly maxMb: number } | undefined;
  /** Weights the image carries (an image build choice, not a job field). */
  readonly modelPrecision: Precision;
  /** How the model runs on the card; the start-up GPU check settles `auto`. */
  readonly engine: {
    readonly attention: AttentionPreference;
    readonly vram: VramPreference;
    readonly blockSwap: BlockSwapPreference;
    /** TORCH_COMPILE: torch.compile the transformer blocks (opt-in: compiled kernels round differently). */
    readonly compile: boolean;
    /** docker/attention_check.py as the image installs it. */
    readonly checkScript: string;
  };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Splits COMFYUI_ARGS like a shell would for simple cases: whitespace, with "quoted parts". */
function splitArgs(s: string | undefined): string[] {
  if (!s) return [];
  return (s.match(/"[^"]*"|'[^']*'|\S+/g) ?? []).map((a) => a.replace(/^(["'])(.*)\1$/, '$2'));
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new WorkerError<JobErrorCode>('CONFIG_INVALID', `Invalid environment: ${problems}`, {
      details: { variables: parsed.error.issues.map((i) => i.path.join('.')) },
    });
  }
  const e = parsed.data;
  const comfyDir = e.COMFYUI_DIR ?? '/comfyui';
  const modelsDir = e.MODELS_DIR ?? path.join(comfyDir, 'models');
  // Beside the models by default: on a network volume every worker then shares what one has encoded.
  const textEmbedCache =
    e.COMFYUI_URL || e.TEXT_EMBED_CACHE_DIR === 'off'
      ? undefined
      : {
          dir: path.join(
            path.resolve(e.TEXT_EMBED_CACHE_DIR ?? path.join(path.dirname(path.resolve(modelsDir)), 'text-embeds')),
            textEncoderKey(),
          ),
          maxMb: e.TEXT_EMBED_CACHE_MAX_MB,
        };
  // What the worker's ComfyUI hook reads: where the text-embedding cache goes, and the prepared-weight cache
  // left off under TORCH_COMPILE (compiled passes never use it; the two were not measured together).
  const hookEnv = {
    ...(textEmbedCache && {
      STEADYDANCER_TEXT_EMBED_DIR: textEmbedCache.dir,
      STEADYDANCER_TEXT_EMBED_MAX_MB: String(textEmbedCache.maxMb),
    }),
    ...(e.TORCH_COMPILE && { STEADYDANCER_WEIGHT_CACHE: 'off' }),
  };
  return deepFreeze({
    mode: e.RUNPOD_WEBHOOK_GET_JOB ? 'production' : 'local',
    logLevel: parseLogLevel(e.RUNPOD_LOG_LEVEL ?? e.RUNPOD_DEBUG_LEVEL),
    runpod: {
      jobTakeUrl: e.RUNPOD_WEBHOOK_GET_JOB,
      jobDoneUrl: e.RUNPOD_WEBHOOK_POST_OUTPUT,
      jobStreamUrl: e.RUNPOD_WEBHOOK_POST_STREAM,
      pingUrl: e.RUNPOD_WEBHOOK_PING === 'PING_NOT_SET' ? undefined : e.RUNPOD_WEBHOOK_PING,
      apiKey: e.RUNPOD_AI_API_KEY,
      podId: e.RUNPOD_POD_ID,
      podHostname: e.RUNPOD_POD_HOSTNAME,
      pingIntervalMs: e.RUNPOD_PING_INTERVAL,
      endpointId: e.RUNPOD_ENDPOINT_ID,
      concurrency: e.WORKER_CONCURRENCY,
      refreshWorker: e.REFRESH_WORKER,
      shutdownGraceMs: e.SHUTDOWN_GRACE_S * 1000,
      jobTimeoutMs: e.JOB_TIMEOUT_S * 1000,
      names: { jobTimeout: 'JOB_TIMEOUT_S', shutdownGrace: 'SHUTDOWN_GRACE_S' },
    },
    comfy: {
      dir: comfyDir,
      python: e.COMFYUI_PYTHON ?? 'python3',
      url: e.COMFYUI_URL,
      port: e.COMFYUI_PORT,
      extraArgs: splitArgs(e.COMFYUI_ARGS),
      startupTimeoutMs: e.COMFYUI_STARTUP_TIMEOUT_S * 1000,
      extraModelPathsConfig: e.COMFYUI_EXTRA_MODEL_PATHS_CONFIG,
      // The worker's environment plus the hook's settings; undefined (the worker's own) when there are none.
      env: Object.keys(hookEnv).length > 0 ? { ...env, ...hookEnv } : undefined,
      names: { url: 'COMFYUI_URL', startupTimeout: 'COMFYUI_STARTUP_TIMEOUT_S', extraArgs: 'COMFYUI_ARGS' },
    },
    bucket: {
      endpointUrl: e.BUCKET_ENDPOINT_URL,
      accessKeyId: e.BUCKET_ACCESS_KEY_ID,
      secretAccessKey: e.BUCKET_SECRET_ACCESS_KEY,
      name: e.BUCKET_NAME,
      region: e.BUCKET_REGION ?? 'auto',
      keyPrefix: e.BUCKET_KEY_PREFIX ?? '',
      publicUrl: e.BUCKET_PUBLIC_URL,
      presignExpiresS: e.PRESIGN_EXPIRES_S,
      allowedJobEndpoints: e.ALLOWED_S3_ENDPOINTS,
      uploadRetryBudgetMs: e.UPLOAD_RETRY_BUDGET_S * 1000,
      requestIdleTimeoutMs: e.UPLOAD_IDLE_TIMEOUT_S * 1000,
    },
    paths: {
      outputDir: path.resolve(e.OUTPUT_DIR ?? './output'),
      workDir: path.resolve(e.WORK_DIR ?? path.join(os.tmpdir(), 'steadydancer-worker')),
      modelsDir,
    },
    media: {
      maxInputBytes: e.MAX_INPUT_BYTES,
      allowPrivateUrls: e.ALLOW_PRIVATE_URLS,
      ffprobePath: e.FFPROBE_PATH ?? 'ffprobe',
      limits: {
        imageMaxSide: e.MAX_INPUT_IMAGE_SIDE,
        imageMaxMegapixels: e.MAX_INPUT_IMAGE_MEGAPIXELS,
        videoMaxSide: e.MAX_INPUT_VIDEO_SIDE,
        videoMaxSeconds: e.MAX_INPUT_VIDEO_SECONDS,
        videoMaxFrames: e.MAX_INPUT_VIDEO_FRAMES,
      },
    },
    modelPrecision: e.MODEL_PRECISION,
    prefetchModels: e.PREFETCH_MODELS,
    textEmbedCache,
    engine: {
      attention: e.ATTENTION_MODE,
      vram: e.VRAM_MODE,
      blockSwap: e.BLOCK_SWAP,
      compile: e.TORCH_COMPILE,
      checkScript: e.GPU_CHECK_SCRIPT ?? '/opt/steadydancer/attention_check.py',
    },
  });
}
