// Content checks on real files: images by their header, videos by ffprobe (the npm package's binary).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { WorkerError } from '../../src/lib/errors';
import { checkImage, checkVideo, type MediaLimits } from '../../src/media/media-limits';
import { ffprobePath, makeBadVideos, makeFixtures, pngHeader, type BadVideos, type Fixtures } from './fixtures';

const LIMITS: MediaLimits = {
  imageMaxSide: 16_384,
  imageMaxMegapixels: 64,
  videoMaxSide: 4096,
  videoMaxSeconds: 600,
  videoMaxFrames: 36_000,
};
const probe = { ffprobePath, timeoutMs: 60_000 };

let dir: string;
let fx: Fixtures;
let bad: BadVideos;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'limits-'));
  [fx, bad] = await Promise.all([makeFixtures(dir), makeBadVideos(dir)]);
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

async function refusal(p: Promise<unknown>): Promise<WorkerError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkerError);
  expect((err as WorkerError).code).toBe('INVALID_INPUT');
  return err as WorkerError;
}

describe('checkImage', () => {
  it('passes real images and returns their size', async () => {
    expect(await checkImage('reference_image', fx.png, 'image/png', LIMITS)).toEqual({ width: 32, height: 48 });
    expect(await checkImage('reference_image', fx.jpg, 'image/jpeg', LIMITS)).toEqual({ width: 32, height: 48 });
  });

  it('refuses a PNG whose header claims 100000×100000, naming the field and the limit', async () => {
    const file = path.join(dir, 'huge.png');
    await writeFile(file, pngHeader(100_000, 100_000));
    const err = await refusal(checkImage('reference_image', file, 'image/png', LIMITS));
    expect(err.message).toBe(
      'reference_image: is 100000×100000 pixels, over the limit of 16384 pixels per side (MAX_INPUT_IMAGE_SIDE); send a smaller image',
    );
    expect(err.details).toEqual({ field: 'reference_image', reason: 'image_size', limit: 16_384, width: 100_000, height: 100_000 });
  });

  it('refuses too many megapixels within the side limit', async () => {
    const file = path.join(dir, 'wide.png');
    await writeFile(file, pngHeader(16_000, 8_000));
    const err = await refusal(checkImage('reference_image', file, 'image/png', LIMITS));
    expect(err.message).toBe(
      'reference_image: is 16000×8000 pixels (128.0 megapixels), over the limit of 64 megapixels (MAX_INPUT_IMAGE_MEGAPIXELS); send a smaller image',
    );
  });

  it('honours other limits (the config values)', async () => {
    await expect(checkImage('reference_image', fx.png, 'image/png', { ...LIMITS, imageMaxSide: 40 })).rejects.toMatchObject({
      message: expect.stringContaining('over the limit of 40 pixels per side'),
    });
  });

  it('refuses an unreadable header', async () => {
    const file = path.join(dir, 'broken.png');
    await writeFile(file, pngHeader(1, 1).subarray(0, 16));
    const err = await refusal(checkImage('reference_image', file, 'image/png', LIMITS));
    expect(err.message).toBe('reference_image: is not a readable image: its PNG header has no IHDR chunk; send a PNG, JPEG or WebP file');
  });
});

describe('checkVideo', () => {
  it.each(['mp4', 'mov', 'webm'] as const)('passes a real %s and returns what it holds', async (kind) => {
    const info = await checkVideo('pose_video', fx[kind], LIMITS, probe);
    expect(info).toMatchObject({ width: 32, height: 48, frames: 9, codec: kind === 'webm' ? 'vp8' : 'h264' });
    expect(info.durationS).toBeCloseTo(9 / 8, 1);
  });

  it('refuses an MP4 cut short after its header: fewer frames than it promises', async () => {
    const err = await refusal(checkVideo('pose_video', bad.cutAfterHeader, LIMITS, probe));
    expect(err.message).toMatch(
      /^pose_video: is truncated or damaged: its header promises 40 frames but the file holds \d+; send the complete file$/,
    );
    expect(err.details).toMatchObject({ field: 'pose_video', reason: 'truncated', declaredFrames: 40 });
  });

  it("refuses an MP4 cut before its header, with ffprobe's reason and no temp path", async () => {
    const err = await refusal(checkVideo('pose_video', bad.cutBeforeHeader, LIMITS, probe));
    expect(err.message).toMatch(/^pose_video: is not a readable video \(.*\); send a complete MP4, MOV or WebM/);
    expect(err.message).toContain('moov atom not found');
    expect(err.message).not.toContain(dir);
    expect(err.details).toMatchObject({ reason: 'unreadable_video' });
  });

  it('refuses a stream that does not decode', async () => {
    const err = await refusal(checkVideo('pose_video', bad.garbled, LIMITS, probe));
    expect(err.message).toBe(
      'pose_video: its h264 video stream does not decode (not one frame could be read); send a complete MP4, MOV or WebM (H.264, H.265, VP8, VP9 or AV1)',
    );
  });

  it('refuses a file without a video stream', async () => {
    const err = await refusal(checkVideo('pose_video', bad.audioOnly, LIMITS, probe));
    expect(err.details).toMatchObject({ reason: 'no_video_stream' });
    expect(err.message).toMatch(/^pose_video: has no video stream; send /);
  });

  it.each([
    [{ videoMaxSide: 40 }, 'video_size', 'is 32×48 pixels, over the limit of 40 pixels per side (MAX_INPUT_VIDEO_SIDE)'],
    [{ videoMaxSeconds: 1 }, 'video_duration', 'is 1 s long, over the limit of 1 s (MAX_INPUT_VIDEO_SECONDS)'],
    [{ videoMaxFrames: 8 }, 'video_frames', 'has 9 frames, over the limit of 8 frames (MAX_INPUT_VIDEO_FRAMES)'],
  ] as const)('refuses a video over %j', async (limit, reason, message) => {
    const err = await refusal(checkVideo('pose_video', fx.mp4, { ...LIMITS, ...limit }, probe));
    expect(err.details).toMatchObject({ field: 'pose_video', reason });
    expect(err.message).toContain(`pose_video: ${message}`);
  });

  it("fails as INTERNAL, not as the user's fault, when ffprobe is missing", async () => {
    await expect(checkVideo('pose_video', fx.mp4, LIMITS, { ffprobePath: path.join(dir, 'no-ffprobe') })).rejects.toMatchObject({
      code: 'INTERNAL',
      message: expect.stringContaining('FFPROBE_PATH'),
    });
  });
});
