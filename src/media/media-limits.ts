// Checks a fetched input's content before it is queued: an image's pixel size from its header, a
// video's stream, length and frames from ffprobe. Each refusal is INVALID_INPUT naming the field,
// what the file holds, the limit (and its variable) and what to send instead.
import { open } from 'node:fs/promises';
import type { FfprobeOptions } from '../lib/ffprobe';
import { invalidInput, type InputField } from './errors';
import { BadImageHeader, fileReader, readImageSize } from './image-size';
import { probeInputVideo, UnreadableVideo } from './video-probe';

export interface MediaLimits {
  /** Longest side of the reference image, pixels (MAX_INPUT_IMAGE_SIDE). */
  imageMaxSide: number;
  /** Width × height of the reference image, megapixels (MAX_INPUT_IMAGE_MEGAPIXELS). */
  imageMaxMegapixels: number;
  /** Longest side of the pose video, pixels (MAX_INPUT_VIDEO_SIDE). */
  videoMaxSide: number;
  /** Length of the pose video, seconds (MAX_INPUT_VIDEO_SECONDS). */
  videoMaxSeconds: number;
  /** Frames in the pose video (MAX_INPUT_VIDEO_FRAMES). */
  videoMaxFrames: number;
}

export interface ImageInfo {
  width: number;
  height: number;
}

export interface InputVideoInfo {
  codec: string;
  width: number;
  height: number;
  frames: number;
  durationS: number | undefined;
}

const IMAGE_FORMS = 'a PNG, JPEG or WebP';
const VIDEO_FORMS = 'a complete MP4, MOV or WebM (H.264, H.265, VP8, VP9 or AV1)';

export async function checkImage(field: InputField, file: string, mime: string, limits: MediaLimits): Promise<ImageInfo> {
  const handle = await open(file, 'r');
  let size: ImageInfo;
  try {
    size = await readImageSize(fileReader(handle), mime);
  } catch (error) {
    if (!(error instanceof BadImageHeader)) throw error;
    throw invalidInput(field, `is not a readable image: ${error.message}; send ${IMAGE_FORMS} file`, { reason: 'image_header' });
  } finally {
    await handle.close();
  }
  const { width, height } = size;
  const megapixels = (width * height) / 1e6;
  const details = { width, height };
  if (Math.max(width, height) > limits.imageMaxSide) {
    throw invalidInput(
      field,
      `is ${width}×${height} pixels, over the limit of ${limits.imageMaxSide} pixels per side (MAX_INPUT_IMAGE_SIDE); send a smaller image`,
      { reason: 'image_size', limit: limits.imageMaxSide, ...details },
    );
  }
  if (megapixels > limits.imageMaxMegapixels) {
    throw invalidInput(
      field,
      `is ${width}×${height} pixels (${megapixels.toFixed(1)} megapixels), over the limit of ${limits.imageMaxMegapixels} megapixels (MAX_INPUT_IMAGE_MEGAPIXELS); send a smaller image`,
      { reason: 'image_size', limit: limits.imageMaxMegapixels, ...details },
    );
  }
  return size;
}

export async function checkVideo(field: InputField, file: string, limits: MediaLimits, ffprobe: FfprobeOptions): Promise<InputVideoInfo> {
  let facts;
  try {
    facts = await probeInputVideo(file, ffprobe);
  } catch (error) {
    if (!(error instanceof UnreadableVideo)) throw error;
    throw invalidInput(field, `is not a readable video (${error.reason}); send ${VIDEO_FORMS}`, { reason: 'unreadable_video' });
  }
  if (!facts) throw invalidInput(field, `has no video stream; send ${VIDEO_FORMS}`, { reason: 'no_video_stream' });
  const { codec, width, height, durationS, declaredFrames, frames, decodedFrames } = facts;
  if (decodedFrames === 0 || width === 0 || height === 0) {
    throw invalidInput(field, `its ${codec} video stream does not decode (not one frame could be read); send ${VIDEO_FORMS}`, {
      reason: 'undecodable',
      codec,
    });
  }
  // A download cut short keeps its header: it promises more frames than the file holds.
  if (declaredFrames !== undefined && frames < declaredFrames * 0.9 - 1) {
    throw invalidInput(
      field,
      `is truncated or damaged: its header promises ${declaredFrames} frames but the file holds ${frames}; send the complete file`,
      { reason: 'truncated', declaredFrames, frames },
    );
  }
  if (Math.max(width, height) > limits.videoMaxSide) {
    throw invalidInput(
      field,
      `is ${width}×${height} pixels, over the limit of ${limits.videoMaxSide} pixels per side (MAX_INPUT_VIDEO_SIDE); send a smaller video`,
      { reason: 'video_size', limit: limits.videoMaxSide, width, height },
    );
  }
  if (durationS !== undefined && durationS > limits.videoMaxSeconds) {
    throw invalidInput(
      field,
      `is ${Math.round(durationS)} s long, over the limit of ${limits.videoMaxSeconds} s (MAX_INPUT_VIDEO_SECONDS); send a shorter clip (a job reads only its first num_frames / fps seconds)`,
      { reason: 'video_duration', limit: limits.videoMaxSeconds, durationS },
    );
  }
  const count = Math.max(frames, declaredFrames ?? 0);
  if (count > limits.videoMaxFrames) {
    throw invalidInput(
      field,
      `has ${count} frames, over the limit of ${limits.videoMaxFrames} frames (MAX_INPUT_VIDEO_FRAMES); send a shorter clip or a lower frame rate`,
      { reason: 'video_frames', limit: limits.videoMaxFrames, frames: count },
    );
  }
  return { codec, width, height, frames, durationS };
}
