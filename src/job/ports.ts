// What the SteadyDancer job needs from the other parts, as narrow interfaces. handler/ adapts the
// real ComfyUI, media, storage and workflow modules to them; tests pass plain objects. The values that
// cross a port are the modules' own types, re-exported here, never declared a second time.
import type { ComfyProgress } from '../comfy';
import type { Logger } from '../lib/logger';
import type { BucketCredentials } from '../s3';
import type { StoredVideo, VideoInfo } from '../storage';
import type { FieldLimits, ResolvedJobInput, VariantLimits } from './schema';

export type { ComfyProgress, StoredVideo, VideoInfo };

/** A job's own bucket (RunPod's `s3Config`), validated and checked by StoragePort.jobBucket. */
export type JobBucket = BucketCredentials;

export interface JobFilesPort {
  /** The job's own temp folder; removed by cleanup whatever happened. */
  readonly dir: string;
  cleanup(): Promise<void>;
}

export interface FetchedFile {
  readonly path: string;
  readonly bytes: number;
  readonly ext: string;
}

export interface InputsPort {
  createJobFiles(jobId: string): Promise<JobFilesPort>;
  fetch(
    field: 'reference_image' | 'pose_video',
    source: string,
    expect: 'image' | 'video',
    files: JobFilesPort,
    opts: { signal: AbortSignal; logger: Logger; bucket?: JobBucket },
  ): Promise<FetchedFile>;
}

/** Names a video in ComfyUI's folders (the session may hand out a richer object; it gets it back as is). */
export interface ComfyVideo {
  readonly filename: string;
  readonly subfolder: string;
  readonly type: 'output' | 'temp' | 'input';
}

export interface ComfySession {
  uploadInput(file: { path: string; name: string }, signal: AbortSignal): Promise<string>;
  runPrompt(
    prompt: Record<string, unknown>,
    opts: { signal: AbortSignal; onProgress: (p: ComfyProgress) => void },
  ): Promise<{
    promptId: string;
    videos: ComfyVideo[];
    /** ComfyUI's own execution time, when it reports one (else the job counts the whole call). */
    executionMs?: number;
  }>;
  /** A local path to the video: ComfyUI's own file when local, else downloaded into `dir`. */
  localPath(video: ComfyVideo, dir: string, signal: AbortSignal): Promise<string>;
  /** Removes the job's inputs and outputs from ComfyUI's folders; never throws. */
  cleanup(files: { inputs: string[]; videos: ComfyVideo[] }): Promise<void>;
}

export interface ComfyPort {
  /** Waits for ComfyUI (booting in the background since worker start). */
  ready(signal: AbortSignal, logger: Logger): Promise<ComfySession>;
  /** False once ComfyUI could not be recovered: the worker should be replaced. */
  readonly healthy: boolean;
}

export interface StoragePort {
  /**
   * A job's raw `s3Config` → its bucket, or INVALID_INPUT naming the field (wrong shape, an endpoint
   * the operator did not allow or one on a private address). Runs before any GPU work.
   */
  jobBucket(s3Config: unknown): Promise<JobBucket>;
  put(
    file: { path: string; name: string; jobId: string; keyPrefix?: string },
    opts: { signal: AbortSignal; logger: Logger; bucket?: JobBucket; filesBaseUrl?: string },
  ): Promise<StoredVideo>;
}

export interface WorkflowPort<V extends string = string> {
  readonly variants: Readonly<Record<V, VariantLimits>>;
  readonly defaultVariant: V;
  /** Prompt length and seed range, the same for every variant. */
  readonly fieldLimits: FieldLimits;
  randomSeed(): number;
  /** Model files the variant needs that the image lacks (empty when ready). */
  missingModels(variant: V): readonly string[];
  /**
   * Why this worker's GPU cannot run the variant, as far as it knows yet (the start-up check may not have
   * settled: buildPrompt checks again); undefined when it can.
   */
  unsupportedVariant?(variant: V): string | undefined;
  buildPrompt(
    params: ResolvedJobInput<V> & {
      referenceImageName: string;
      poseVideoName: string;
      filenamePrefix: string;
    },
  ): Record<string, unknown>;
  /**
   * What to try after ComfyUI ran out of GPU memory on this job, from the memory settings it ran with
   * (mode, swapped blocks, VAE tiling, card size); absent where the worker knows nothing better than
   * ComfyUI's own message.
   */
  outOfMemoryAdvice?(job: { width: number; height: number; num_frames: number }): string;
}

export interface JobDeps<V extends string = string> {
  readonly workflow: WorkflowPort<V>;
  readonly inputs: InputsPort;
  readonly comfy: ComfyPort;
  readonly storage: StoragePort;
  readonly probe: (path: string) => Promise<VideoInfo>;
  readonly logger: Logger;
  readonly now?: () => number;
}
