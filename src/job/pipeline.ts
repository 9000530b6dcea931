// The SteadyDancer job: validate → fetch inputs (while ComfyUI boots) → upload them to ComfyUI →
// fill the variant's graph → queue and monitor → collect the MP4s → upload → return URLs → clean up.
import path from 'node:path';
import { WorkerError, formatError, isWorkerError, toWorkerError } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type {
  ComfySession,
  ComfyVideo,
  FetchedFile,
  JobBucket,
  JobDeps,
  JobFilesPort,
  StoredVideo,
  VideoInfo,
  WorkflowPort,
} from './ports';
import { inferenceUpdate, stageUpdate, type ProgressUpdate } from './progress';
import { createJobInputSchema, parseJobInput, type ResolvedJobInput } from './schema';
import { jobError } from './errors';

export interface JobRequest {
  readonly id: string;
  readonly input: unknown;
  /** RunPod's per-job bucket as sent (unchecked); StoragePort.jobBucket validates it. */
  readonly s3Config?: unknown;
}

export interface JobRuntime {
  readonly signal: AbortSignal;
  progress(update: ProgressUpdate): void;
  readonly logger: Logger;
  /** Local API: base URL under which locally written outputs are served. */
  readonly filesBaseUrl?: string;
}

/** A stored video with what ffprobe read of it. */
export type OutputVideo = StoredVideo & Pick<VideoInfo, 'width' | 'height' | 'frames' | 'fps'>;

export interface JobOutput {
  videos: OutputVideo[];
  variant: string;
  seed: number;
  timings_ms: { inputs: number; queue: number; inference: number; upload: number; total: number };
}

export interface JobFailure {
  error: string;
  refresh_worker?: true;
}

/** Job ids become folder and file names: keep them to a safe alphabet. */
export function safeJobId(id: string): string {
  const cleaned = id.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 96);
  return cleaned || 'job';
}

/**
 * One job's state: what its stages share, and what cleanup has to undo whichever stage failed.
 * The stages fill `files`, `session`, `comfyInputs` and `comfyVideos` as they create them.
 */
interface JobScope<V extends string> {
  readonly deps: JobDeps<V>;
  readonly rt: JobRuntime;
  /** The job id made safe for folder, file and object names. */
  readonly key: string;
  readonly input: ResolvedJobInput<V>;
  /** The job's own bucket (s3Config), if it sent one. */
  readonly bucket: JobBucket | undefined;
  files?: JobFilesPort;
  session?: ComfySession;
  readonly comfyInputs: string[];
  readonly comfyVideos: ComfyVideo[];
}

/** The stages `timings_ms` times (progress has stages of its own: progress.ts `Stage`). */
type TimedStage = Exclude<keyof JobOutput['timings_ms'], 'total'>;

/** `timings_ms`: each stage lasts from the end of the previous one (or as long as it reports). */
function stopwatch(now: () => number) {
  const started = now();
  let last = started;
  const laps = {} as Record<TimedStage, number>;
  return {
    /** Ends `stage` now; `measured` replaces the elapsed time when the stage knows better. */
    lap(stage: TimedStage, measured?: number): void {
      const t = now();
      laps[stage] = measured ?? t - last;
      last = t;
    },
    /** From the start to the last lap. */
    totalMs: (): number => last - started,
    timings: (): JobOutput['timings_ms'] => ({ ...laps, total: last - started }),
  };
}

/** OUT_OF_MEMORY with the advice for the settings this job ran with in place of ComfyUI's generic one. */
function withMemoryAdvice(err: unknown, workflow: WorkflowPort<string>, job: ResolvedJobInput<string>): unknown {
  if (!isWorkerError(err, 'OUT_OF_MEMORY') || !workflow.outOfMemoryAdvice) return err;
  const advice = workflow.outOfMemoryAdvice({ width: job.width, height: job.height, num_frames: job.num_frames });
  const summary = typeof err.details['summary'] === 'string' ? err.details['summary'] : err.message;
  // The code stays ComfyUI's; only the advice is the job's.
  return new WorkerError(err.code, `${summary} ${advice}`, { details: { ...err.details, advice }, cause: err.cause });
}

export function createSteadyDancerJob<V extends string>(deps: JobDeps<V>) {
  const schema = createJobInputSchema(deps.workflow.variants, deps.workflow.defaultVariant, deps.workflow.fieldLimits);
  const now = deps.now ?? Date.now;

  /** Validates the input and the job's bucket before any work, so a bad job fails at once, not after inference. */
  async function accept(job: JobRequest, rt: JobRuntime): Promise<{ input: ResolvedJobInput<V>; bucket: JobBucket | undefined }> {
    const input = parseJobInput(schema, deps.workflow.variants, job.input, () => deps.workflow.randomSeed());
    const missing = deps.workflow.missingModels(input.variant);
    if (missing.length > 0) {
      throw jobError(
        'MODEL_MISSING',
        `variant "${input.variant}" needs model files this image lacks: ${missing.join(', ')}. ` +
          'Build the image with them baked in, or put them on the network volume (see README: Deploy).',
        { details: { field: 'variant', missing } },
      );
    }
    // Before any download: a warm worker already knows its GPU.
    const unsupported = deps.workflow.unsupportedVariant?.(input.variant);
    if (unsupported) throw jobError('INVALID_INPUT', `variant: ${unsupported}`, { details: { field: 'variant' } });
    const bucket = job.s3Config == null ? undefined : await deps.storage.jobBucket(job.s3Config);
    rt.logger.info('job accepted', {
      variant: input.variant,
      seed: input.seed,
      width: input.width,
      height: input.height,
      num_frames: input.num_frames,
    });
    return { input, bucket };
  }

  return async function runJob(job: JobRequest, rt: JobRuntime): Promise<JobOutput | JobFailure> {
    const clock = stopwatch(now);
    let scope: JobScope<V> | undefined;
    try {
      scope = { deps, rt, key: safeJobId(job.id), ...(await accept(job, rt)), comfyInputs: [], comfyVideos: [] };

      // Cold start: fetching inputs overlaps ComfyUI's boot rather than following it.
      rt.progress(stageUpdate('inputs'));
      const comfyReady = deps.comfy.ready(rt.signal, rt.logger);
      comfyReady.catch(() => {}); // awaited below; avoid an unhandled rejection while inputs fail first
      scope.files = await deps.inputs.createJobFiles(scope.key);
      const fetched = await fetchInputs(scope, scope.files);
      clock.lap('inputs');

      rt.progress(stageUpdate('starting'));
      scope.session = await comfyReady;
      const prompt = await preparePrompt(scope, scope.session, fetched);
      rt.progress(stageUpdate('queued'));
      clock.lap('queue');

      const { input } = scope;
      const result = await scope.session
        .runPrompt(prompt, { signal: rt.signal, onProgress: (p) => rt.progress(inferenceUpdate(p)) })
        .catch((err: unknown) => {
          throw withMemoryAdvice(err, deps.workflow, input);
        });
      scope.comfyVideos.push(...result.videos);
      // ComfyUI's own execution time: queueing, socket and /history round trips are the worker's
      clock.lap('inference', result.executionMs);
      if (result.videos.length === 0) {
        throw jobError('OUTPUT_MISSING', 'the workflow finished but wrote no MP4; check the ComfyUI log lines above');
      }

      rt.progress(stageUpdate('uploading'));
      const videos: OutputVideo[] = [];
      for (const video of result.videos) videos.push(await storeVideo(scope, scope.session, scope.files, video));
      clock.lap('upload');
      rt.logger.info('job done', { videos: videos.length, seconds: clock.totalMs() / 1000 });
      return { videos, variant: scope.input.variant, seed: scope.input.seed, timings_ms: clock.timings() };
    } catch (err) {
      return failed(err, rt, deps.comfy.healthy);
    } finally {
      if (scope?.session) await scope.session.cleanup({ inputs: scope.comfyInputs, videos: scope.comfyVideos });
      if (scope?.files) await scope.files.cleanup();
    }
  };
}

/** The job's result when a stage threw. */
function failed(err: unknown, rt: JobRuntime, comfyHealthy: boolean): JobFailure {
  // An aborted job ends with the abort's reason (CANCELLED or TIMEOUT), whatever the step that noticed.
  const reason = rt.signal.aborted ? toWorkerError(rt.signal.reason, 'CANCELLED') : toWorkerError(err);
  // Expected failures log their message; a cause (a foreign error) or a bug logs its stack too.
  const logged = reason.cause ?? (reason.code === 'INTERNAL' ? reason : undefined);
  rt.logger.error(`job failed: ${formatError(reason)}`, { code: reason.code, details: reason.details, ...(logged ? { err: logged } : {}) });
  const failure: JobFailure = { error: formatError(reason) };
  if (!comfyHealthy) failure.refresh_worker = true;
  return failure;
}

async function fetchInputs<V extends string>(
  scope: JobScope<V>,
  files: JobFilesPort,
): Promise<{ reference: FetchedFile; pose: FetchedFile }> {
  const { deps, input, bucket, rt } = scope;
  // Fail fast: the first failed fetch aborts the other one; both are settled before the caller
  // cleans up, so no fetch writes into a folder that is being removed.
  const both = new AbortController();
  const combined = AbortSignal.any([rt.signal, both.signal]);
  let firstError: unknown;
  const fetchOne = (field: 'reference_image' | 'pose_video', expect: 'image' | 'video') =>
    deps.inputs
      .fetch(field, input[field], expect, files, { signal: combined, logger: rt.logger, ...(bucket ? { bucket } : {}) })
      .catch((err: unknown) => {
        if (!both.signal.aborted) {
          firstError = err;
          both.abort(err);
        }
        throw err;
      });
  const [ref, pos] = await Promise.allSettled([fetchOne('reference_image', 'image'), fetchOne('pose_video', 'video')]);
  if (ref.status === 'rejected' || pos.status === 'rejected') throw firstError;
  return { reference: ref.value, pose: pos.value };
}

/** Hands the inputs to ComfyUI (recorded for cleanup) and fills the variant's graph with them. */
async function preparePrompt<V extends string>(
  scope: JobScope<V>,
  session: ComfySession,
  fetched: { reference: FetchedFile; pose: FetchedFile },
): Promise<Record<string, unknown>> {
  const { key, rt } = scope;
  const referenceImageName = await session.uploadInput(
    { path: fetched.reference.path, name: `${key}_reference${fetched.reference.ext}` },
    rt.signal,
  );
  scope.comfyInputs.push(referenceImageName);
  const poseVideoName = await session.uploadInput({ path: fetched.pose.path, name: `${key}_pose${fetched.pose.ext}` }, rt.signal);
  scope.comfyInputs.push(poseVideoName);
  return scope.deps.workflow.buildPrompt({ ...scope.input, referenceImageName, poseVideoName, filenamePrefix: 'steadydancer' });
}

async function storeVideo<V extends string>(
  scope: JobScope<V>,
  session: ComfySession,
  files: JobFilesPort,
  video: ComfyVideo,
): Promise<OutputVideo> {
  const { deps, rt, input, bucket } = scope;
  const local = await session.localPath(video, files.dir, rt.signal);
  // Probed before the upload, not beside it: a file ffprobe cannot read must never reach the bucket.
  const info = await deps.probe(local);
  const stored = await deps.storage.put(
    {
      path: local,
      name: path.basename(video.filename),
      jobId: scope.key,
      ...(input.key_prefix !== undefined ? { keyPrefix: input.key_prefix } : {}),
    },
    { signal: rt.signal, logger: rt.logger, ...(bucket ? { bucket } : {}), ...(rt.filesBaseUrl ? { filesBaseUrl: rt.filesBaseUrl } : {}) },
  );
  return { ...stored, width: info.width, height: info.height, frames: info.frames, fps: info.fps };
}
