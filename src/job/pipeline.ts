// The SteadyDancer job: validate → fetch inputs (while ComfyUI boots) → upload them to ComfyUI →
// fill the variant's graph → queue and monitor → collect the MP4s → upload → return URLs → clean up.
import path from 'node:path';
import { WorkerError, formatError, isWorkerError, toWorkerError } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { BucketOverride, ComfySession, ComfyVideo, FetchedFile, JobDeps, JobFilesPort, WorkflowPort } from './ports';
import { inferenceUpdate, stageUpdate, type ProgressUpdate } from './progress';
import { createJobInputSchema, parseJobInput, type ResolvedJobInput } from './schema';

export interface JobRequest {
  readonly id: string;
  readonly input: unknown;
  readonly s3Config?: BucketOverride;
}

export interface JobRuntime {
  readonly signal: AbortSignal;
  progress(update: ProgressUpdate): void;
  readonly logger: Logger;
  /** Local API: base URL under which locally written outputs are served. */
  readonly filesBaseUrl?: string;
}

export interface OutputVideo {
  url: string;
  bucket?: string;
  key?: string;
  content_type: 'video/mp4';
  bytes: number;
  width: number;
  height: number;
  frames: number;
  fps: number;
  inline?: true;
  path?: string;
}

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

/** OUT_OF_MEMORY with the advice for the settings this job ran with in place of ComfyUI's generic one. */
function withMemoryAdvice(err: unknown, workflow: WorkflowPort<string>, job: ResolvedJobInput<string>): unknown {
  if (!isWorkerError(err, 'OUT_OF_MEMORY') || !workflow.outOfMemoryAdvice) return err;
  const advice = workflow.outOfMemoryAdvice({ width: job.width, height: job.height, num_frames: job.num_frames });
  const summary = typeof err.details['summary'] === 'string' ? err.details['summary'] : err.message;
  return new WorkerError('OUT_OF_MEMORY', `${summary} ${advice}`, { details: { ...err.details, advice }, cause: err.cause });
}

export function createSteadyDancerJob<V extends string>(deps: JobDeps<V>) {
  const schema = createJobInputSchema(deps.workflow.variants, deps.workflow.defaultVariant);
  const now = deps.now ?? Date.now;

  return async function runJob(job: JobRequest, rt: JobRuntime): Promise<JobOutput | JobFailure> {
    const started = now();
    const jobKey = safeJobId(job.id);
    let files: JobFilesPort | undefined;
    let session: ComfySession | undefined;
    const comfyInputs: string[] = [];
    const comfyVideos: ComfyVideo[] = [];
    try {
      const input = parseJobInput(schema, deps.workflow.variants, job.input, () => deps.workflow.randomSeed());
      const missing = deps.workflow.missingModels(input.variant);
      if (missing.length > 0) {
        throw new WorkerError(
          'MODEL_MISSING',
          `variant "${input.variant}" needs model files this image lacks: ${missing.join(', ')}. ` +
            'Build the image with them baked in, or put them on the network volume (see README: Deploy).',
          { details: { field: 'variant', missing } },
        );
      }
      rt.logger.info('job accepted', { variant: input.variant, seed: input.seed, width: input.width, height: input.height, num_frames: input.num_frames });

      // Cold start: fetching inputs overlaps ComfyUI's boot rather than following it.
      rt.progress(stageUpdate('inputs'));
      const comfyReady = deps.comfy.ready(rt.signal, rt.logger);
      comfyReady.catch(() => {}); // awaited below; avoid an unhandled rejection while inputs fail first
      files = await deps.inputs.createJobFiles(jobKey);
      const fetched = await fetchInputs(deps, input, files, job.s3Config, rt.signal, rt.logger);
      const inputsDone = now();

      rt.progress(stageUpdate('starting'));
      session = await comfyReady;
      const referenceImageName = await session.uploadInput(
        { path: fetched.reference.path, name: `${jobKey}_reference${fetched.reference.ext}` },
        rt.signal,
      );
      comfyInputs.push(referenceImageName);
      const poseVideoName = await session.uploadInput(
        { path: fetched.pose.path, name: `${jobKey}_pose${fetched.pose.ext}` },
        rt.signal,
      );
      comfyInputs.push(poseVideoName);

      const prompt = deps.workflow.buildPrompt({
        ...input,
        referenceImageName,
        poseVideoName,
        filenamePrefix: 'steadydancer',
      });
      rt.progress(stageUpdate('queued'));
      const queued = now();
      const result = await session
        .runPrompt(prompt, {
          signal: rt.signal,
          onProgress: (p) => rt.progress(inferenceUpdate(p)),
        })
        .catch((err: unknown) => {
          throw withMemoryAdvice(err, deps.workflow, input);
        });
      comfyVideos.push(...result.videos);
      const inferred = now();
      if (result.videos.length === 0) {
        throw new WorkerError('OUTPUT_MISSING', 'the workflow finished but wrote no MP4; check the ComfyUI log lines above');
      }

      rt.progress(stageUpdate('uploading'));
      const videos: OutputVideo[] = [];
      for (const video of result.videos) {
        videos.push(await storeVideo(deps, session, video, files, jobKey, input, job.s3Config, rt));
      }
      const uploaded = now();
      rt.logger.info('job done', { videos: videos.length, seconds: (uploaded - started) / 1000 });
      return {
        videos,
        variant: input.variant,
        seed: input.seed,
        timings_ms: {
          inputs: inputsDone - started,
          queue: queued - inputsDone,
          // ComfyUI's own execution time: queueing, socket and /history round trips are the worker's
          inference: result.executionMs ?? inferred - queued,
          upload: uploaded - inferred,
          total: uploaded - started,
        },
      };
    } catch (err) {
      // An aborted job ends with the abort's reason (CANCELLED or TIMEOUT), whatever the step that noticed.
      const reason = rt.signal.aborted ? toWorkerError(rt.signal.reason, 'CANCELLED') : toWorkerError(err);
      // Expected failures log their message; a cause (a foreign error) or a bug logs its stack too.
      const logged = reason.cause ?? (reason.code === 'INTERNAL' ? reason : undefined);
      rt.logger.error(`job failed: ${formatError(reason)}`, { code: reason.code, details: reason.details, ...(logged ? { err: logged } : {}) });
      const failure: JobFailure = { error: formatError(reason) };
      if (!deps.comfy.healthy) failure.refresh_worker = true;
      return failure;
    } finally {
      if (session) await session.cleanup({ inputs: comfyInputs, videos: comfyVideos });
      if (files) await files.cleanup();
    }
  };
}

async function fetchInputs<V extends string>(
  deps: JobDeps<V>,
  input: ResolvedJobInput<V>,
  files: JobFilesPort,
  bucket: BucketOverride | undefined,
  signal: AbortSignal,
  logger: Logger,
): Promise<{ reference: FetchedFile; pose: FetchedFile }> {
  // Fail fast: the first failed fetch aborts the other one; both are settled before the caller
  // cleans up, so no fetch writes into a folder that is being removed.
  const both = new AbortController();
  const combined = AbortSignal.any([signal, both.signal]);
  let firstError: unknown;
  const fetchOne = (field: 'reference_image' | 'pose_video', expect: 'image' | 'video') =>
    deps.inputs
      .fetch(field, input[field], expect, files, { signal: combined, logger, ...(bucket ? { bucket } : {}) })
      .catch((err: unknown) => {
        if (!both.signal.aborted) {
          firstError = err;
          both.abort(err);
        }
        throw err;
      });
  const [ref, pos] = await Promise.allSettled([fetchOne('reference_image', 'image'), fetchOne('pose_video', 'video')]);
  if (ref.status === 'rejected' || pos.status === 'rejected') throw firstError;
  const reference = ref.value;
  const pose = pos.value;
  return { reference, pose };
}

async function storeVideo<V extends string>(
  deps: JobDeps<V>,
  session: ComfySession,
  video: ComfyVideo,
  files: JobFilesPort,
  jobKey: string,
  input: ResolvedJobInput<V>,
  bucket: BucketOverride | undefined,
  rt: JobRuntime,
): Promise<OutputVideo> {
  const { signal } = rt;
  const local = await session.localPath(video, files.dir, signal);
  // Probed before the upload, not beside it: a file ffprobe cannot read must never reach the bucket.
  const info = await deps.probe(local);
  const stored = await deps.storage.put(
    { path: local, name: path.basename(video.filename), jobId: jobKey, ...(input.key_prefix !== undefined ? { keyPrefix: input.key_prefix } : {}) },
    { signal, logger: rt.logger, ...(bucket ? { bucket } : {}), ...(rt.filesBaseUrl ? { filesBaseUrl: rt.filesBaseUrl } : {}) },
  );
  return { ...stored, content_type: 'video/mp4', width: info.width, height: info.height, frames: info.frames, fps: info.fps };
}
