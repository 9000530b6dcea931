import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parseRate } from '../../src/lib/ffprobe';
import { probeVideo } from '../../src/storage/probe';
import { ffprobePath, makeFixtures, type Fixtures } from '../media/fixtures';

let dir: string;
let fx: Fixtures;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'probe-'));
  fx = await makeFixtures(dir);
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('probeVideo', () => {
  it.each(['mp4', 'webm'] as const)('reads size, frames and fps from a real %s', async (kind) => {
    const info = await probeVideo(fx[kind], { ffprobePath });
    expect(info).toMatchObject({ width: 32, height: 48, frames: 9, fps: 8 });
    expect(info.bytes).toBeGreaterThan(0);
  });

  it('fails as OUTPUT_MISSING for a file that is not a video, INTERNAL when ffprobe is missing', async () => {
    const junk = path.join(dir, 'junk.mp4');
    await writeFile(junk, 'not a video');
    await expect(probeVideo(junk, { ffprobePath })).rejects.toMatchObject({ code: 'OUTPUT_MISSING' });
    const noBinary = path.join(dir, 'no-ffprobe');
    const err = (await probeVideo(fx.mp4, { ffprobePath: noBinary }).catch((e: unknown) => e)) as Error & { code: string };
    expect([err.code, err.message]).toEqual(['INTERNAL', `ffprobe not found at "${noBinary}" (FFPROBE_PATH); install ffmpeg in the image`]);
  });

  it('parses frame rates', () => {
    expect(parseRate('30000/1001')).toBe(29.97);
    expect(parseRate('0/0')).toBe(0);
    expect(parseRate(undefined)).toBe(0);
  });
});
