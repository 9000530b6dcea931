// Builds every part from the config and hands each its slice: the ComfyUI supervisor (booting from
// the start), the input fetcher, the video store, the workflow registry, and the job on top.
import { ComfySupervisor } from '../src/comfy';
import type { Config } from '../src/config';
import { outOfMemoryAdvice } from '../src/gpu';
import { createSteadyDancerJob } from '../src/job/pipeline';
import type { InputsPort, StoragePort, WorkflowPort } from '../src/job/ports';
import type { Logger } from '../src/lib/logger';
import { createJobFiles, InputFetcher } from '../src/media';
import { systemLookup } from '../src/media/address-guard';
import type { Handler, HandlerHealth } from '../src/runpod';
import { EndpointGuard, s3ClientFactory, type BucketCredentials, type S3ClientFactory } from '../src/s3';
import { probeVideo, VideoStore } from '../src/storage';
import {
  allRequiredNodeClasses,
  buildPrompt,
  checkModels,
  DEFAULT_VARIANT,
  MAX_PROMPT_CHARS,
  MAX_SEED,
  randomSeed,
  unsupportedVariant,
  VARIANTS,
  type VariantName,
} from '../src/workflow';
import { modelFilesInLoadOrder, prefetchBudgetBytes, prefetchFiles } from '../src/workflow/prefetch';
import { NODE_PACKS } from '../src/workflow/node-packs';
import { comfyHealth, comfyMissing, createComfyPort } from './comfy-port';
import { startEngine, type Engine } from './engine';

export interface App {
  handler: Handler;
  /** ComfyUI's state, for the local API's /health. */
  health(): Promise<HandlerHealth>;
  /** Stops ComfyUI; called once the worker has drained. */
  close(): Promise<void>;
}

function workflowPort(config: Config, logger: Logger, checkLocalModels: boolean, engine: Engine): WorkflowPort<VariantName> {
  // An external ComfyUI (COMFYUI_URL) has its own model folders: its /prompt validation names
  // missing files, so only a ComfyUI we start is checked against MODELS_DIR.
  const models = checkLocalModels ? checkModels({ modelsDirs: [config.paths.modelsDir], precision: config.modelPrecision }) : undefined;
  if (models) {
    logger.info('model files checked', {
      modelsDir: config.paths.modelsDir,
      precision: config.modelPrecision,
      variantsReady: models.available,
    });
    for (const [variant, files] of Object.entries(models.missing)) {
      if (files.length > 0) logger.warn('variant unavailable: model files missing', { variant, files, modelsDir: config.paths.modelsDir });
    }
  }
  return {
    variants: VARIANTS,
    defaultVariant: DEFAULT_VARIANT,
    fieldLimits: { maxPromptChars: MAX_PROMPT_CHARS, maxSeed: MAX_SEED },
    randomSeed: () => randomSeed(),
    missingModels: (variant) => models?.missing[variant] ?? [],
    unsupportedVariant: (variant) => unsupportedVariant(variant, engine.current()),
    buildPrompt: (params) =>
      buildPrompt({
        ...params,
        precision: config.modelPrecision,
        engine: engine.current(),
        textEmbedCache: config.textEmbedCache !== undefined,
      }),
    outOfMemoryAdvice: (job) => {
      const settings = engine.current();
      return outOfMemoryAdvice({
        plan: { mode: settings.memoryMode, blockSwap: settings.blockSwap, vaeTilingAbovePixels: settings.vaeTilingAbovePixels },
        vram: config.engine.vram,
        precision: config.modelPrecision,
        cardGiB: settings.cardGiB,
        job,
      });
    },
  };
}

/** Cold start: the default variant's model files are read while ComfyUI boots (src/workflow/prefetch.ts). Never fails. */
function prefetchModels(config: Config, logger: Logger, signal: AbortSignal): void {
  const files = modelFilesInLoadOrder(DEFAULT_VARIANT, config.modelPrecision, [config.paths.modelsDir]);
  void prefetchFiles({ files, budgetBytes: prefetchBudgetBytes(), signal }).then(
    (r) =>
      logger.info('model files prefetched', {
        files: r.files,
        gib: Number((r.bytes / 1024 ** 3).toFixed(2)),
        seconds: Number(r.seconds.toFixed(1)),
        ...(r.skipped.length > 0 ? { skipped: r.skipped } : {}),
        ...(r.aborted ? { aborted: true } : {}),
      }),
    (err: unknown) => logger.warn('model prefetch failed', { error: err }),
  );
}

function inputsPort(config: Config, logger: Logger, workerBucket: BucketCredentials | undefined, s3: S3ClientFactory): InputsPort {
  const fetcher = new InputFetcher({
    maxBytes: config.media.maxInputBytes,
    allowPrivateUrls: config.media.allowPrivateUrls,
    limits: config.media.limits,
    ffprobePath: config.media.ffprobePath,
    logger,
    s3,
  });
  return {
    createJobFiles: (jobId) => createJobFiles(config.paths.workDir, jobId, logger),
    fetch: (field, source, expect, files, { signal, bucket, logger: jobLogger }) => {
      const credentials = bucket ?? workerBucket;
      return fetcher.fetch(field, source, expect, files, {
        signal,
        logger: jobLogger,
        ...(credentials ? { bucket: credentials } : {}),
      });
    },
  };
}

function storagePort(config: Config, store: VideoStore): StoragePort {
  // A job's own endpoint passes the same address guard as input URLs, and the operator's allow-list.
  const guard = new EndpointGuard({
    allowPrivate: config.media.allowPrivateUrls,
    allowedEndpoints: config.bucket.allowedJobEndpoints,
    lookup: systemLookup,
  });
  return {
    jobBucket: (s3Config) => guard.jobBucket(s3Config, config.bucket.region),
    put: (file, { signal, bucket, filesBaseUrl, logger }) =>
      store.put(
        {
          path: file.path,
          name: file.name,
          jobId: file.jobId,
          logger,
          ...(file.keyPrefix !== undefined ? { keyPrefix: file.keyPrefix } : {}),
          ...(filesBaseUrl ? { filesBaseUrl } : {}),
          ...(bucket ? { bucket } : {}),
        },
        signal,
      ),
  };
}

/** `workerBucket`: the worker's own bucket from `config.bucket` (bucketFromConfig), read once at start. */
export function createApp(config: Config, logger: Logger, workerBucket: BucketCredentials | undefined): App {
  // Every S3 client (inputs and outputs) gets the per-request timeouts and logs the SDK's lines as JSON.
  const s3 = s3ClientFactory({ timeouts: { idleMs: config.bucket.requestIdleTimeoutMs }, logger: logger.child({ component: 'aws-sdk' }) });
  // One store for the worker's life, so uploads to its bucket reuse connections across jobs.
  const store = new VideoStore({
    ...(workerBucket ? { bucket: workerBucket } : {}),
    keyPrefix: config.bucket.keyPrefix,
    ...(config.bucket.publicUrl ? { publicUrl: config.bucket.publicUrl } : {}),
    presignExpiresS: config.bucket.presignExpiresS,
    logger,
    outputDir: config.paths.outputDir,
    mode: config.mode,
    s3,
    upload: { retryBudgetMs: config.bucket.uploadRetryBudgetMs },
  });
  const unavailable = comfyMissing(config.comfy);
  const supervisor = unavailable
    ? undefined
    : new ComfySupervisor({
        config: config.comfy,
        workDir: config.paths.workDir,
        requiredNodeClasses: allRequiredNodeClasses(),
        nodePacks: NODE_PACKS,
        logger: logger.child({ component: 'comfyui' }),
      });
  if (unavailable) logger.error(unavailable.message, { code: unavailable.code });
  // Cold start: ComfyUI boots while the worker waits for (and fetches) its first job, and the GPU
  // check runs beside it; a job waits for both before it builds its prompt.
  supervisor?.start();
  const engine = startEngine(config, logger, supervisor !== undefined && !config.comfy.url);
  const prefetch = new AbortController();
  if (supervisor && !config.comfy.url && config.prefetchModels) prefetchModels(config, logger, prefetch.signal);

  const runJob = createSteadyDancerJob({
    workflow: workflowPort(config, logger, supervisor !== undefined && !config.comfy.url, engine),
    inputs: inputsPort(config, logger, workerBucket, s3),
    comfy: createComfyPort({ supervisor, unavailable, before: engine.settled, extraArgsName: config.comfy.names?.extraArgs }),
    storage: storagePort(config, store),
    probe: (file) => probeVideo(file, { ffprobePath: config.media.ffprobePath }),
    logger,
  });

  return {
    handler: (job, ctx) =>
      runJob(
        { id: job.id, input: job.input, ...(job.s3Config !== undefined ? { s3Config: job.s3Config } : {}) },
        {
          signal: ctx.signal,
          progress: (update) => ctx.progress(update),
          logger: ctx.logger,
          ...(ctx.filesBaseUrl ? { filesBaseUrl: ctx.filesBaseUrl } : {}),
        },
      ),
    health: () => comfyHealth({ supervisor, unavailable }),
    close: async () => {
      prefetch.abort();
      store.close();
      await supervisor?.stop();
    },
  };
}
