import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { isFfprobeMissing, parseRate, runFfprobe } from '../../src/lib/ffprobe';
import { ffprobePath } from '../media/fixtures';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ffprobe-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('runFfprobe', () => {
  it("rejects with ffprobe's stderr for a file it cannot read", async () => {
    const junk = path.join(dir, 'junk.mp4');
    await writeFile(junk, 'not a video');
    const err = await runFfprobe(['-v', 'error', junk], { ffprobePath }).catch((e: unknown) => e);
    expect((err as { stderr: string }).stderr).toContain('Invalid data found');
    expect(isFfprobeMissing(err, junk)).toBe(false);
  });

  it('tells a missing ffprobe from a missing file', async () => {
    const missingFile = path.join(dir, 'nothing.mp4');
    const noBinary = await runFfprobe([missingFile], { ffprobePath: path.join(dir, 'no-ffprobe') }).catch((e: unknown) => e);
    expect(isFfprobeMissing(noBinary, missingFile)).toBe(true);
    const noFile = await runFfprobe(['-v', 'error', missingFile], { ffprobePath }).catch((e: unknown) => e);
    expect(isFfprobeMissing(noFile, missingFile)).toBe(false);
  });
});

describe('parseRate', () => {
  it('parses frame rates', () => {
    expect(parseRate('30000/1001')).toBe(29.97);
    expect(parseRate('16/1')).toBe(16);
    expect(parseRate('0/0')).toBe(0);
    expect(parseRate(undefined)).toBe(0);
  });
});
