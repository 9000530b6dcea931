// What the SteadyDancer job needs from the other parts, as narrow interfaces. handler/ adapts the
// real ComfyUI, media, storage and workflow modules to them; tests pass plain objects.
import type { Logger } from '../lib/logger';
import type { ResolvedJobInput, VariantLimits } from './schema';

export interface BucketOverride {
  readonly accessId: string;
  readonly accessSecret: string;
  readonly bucketName: string;
  readonly endpointUrl: string;
}

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
    opts: { signal: AbortSignal; logger: Logger; bucket?: BucketOverride },
  ): Promise<FetchedFile>;
}

export interface ComfyProgress {
  readonly percent: number;
  readonly nodeType?: string;
  readonly step?: number;
  readonly steps?: number;
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

export interface VideoInfo {
  readonly width: number;
  readonly height: number;
  readonly frames: number;
  readonly fps: number;
  readonly bytes: number;
}

export interface StoredVideo {
  readonly url: string;
  readonly bucket?: string;
  readonly key?: string;
  readonly bytes: number;
  /** True when `url` is a data: URI carrying the video itself. */
  readonly inline?: true;
  readonly path?: string;
}

export interface StoragePort {
  put(
    file: { path: string; name: string; jobId: string; keyPrefix?: string },
    opts: { signal: AbortSignal; logger: Logger; bucket?: BucketOverride; filesBaseUrl?: string },
  ): Promise<StoredVideo>;
}

export interface WorkflowPort<V extends string = string> {
  readonly variants: Readonly<Record<V, VariantLimits>>;
  readonly defaultVariant: V;
  randomSeed(): number;
  /** Model files the variant needs that the image lacks (empty when ready). */
  missingModels(variant: V): readonly string[];
  buildPrompt(params: ResolvedJobInput<V> & {
    referenceImageName: string;
    poseVideoName: string;
    filenamePrefix: string;
  }): Record<string, unknown>;
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
