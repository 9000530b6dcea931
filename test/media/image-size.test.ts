// Header dimensions of real images made by ffmpeg, and of hand-made headers that lie or break.
import { execFile } from 'node:child_process';
import { mkdtemp, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { BadImageHeader, fileReader, readImageSize, type ReadAt } from '../../src/media/image-size';
import { ffmpegPath, pngHeader, lavfiInput } from './fixtures';

const run = promisify(execFile);
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'image-size-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

const memory =
  (bytes: Uint8Array): ReadAt =>
  async (offset, length) =>
    bytes.subarray(offset, offset + length);
const u16be = (n: number): number[] => [n >> 8, n & 255];
const u24le = (n: number): number[] => [n & 255, (n >> 8) & 255, (n >> 16) & 255];
const latin1 = (s: string): number[] => [...Buffer.from(s, 'latin1')];

describe('readImageSize on real files', () => {
  it.each([
    ['PNG', 'x.png', [], 'image/png'],
    ['JPEG', 'x.jpg', [], 'image/jpeg'],
    ['lossy WebP (VP8)', 'x.webp', ['-c:v', 'libwebp', '-lossless', '0'], 'image/webp'],
    ['lossless WebP (VP8L)', 'y.webp', ['-c:v', 'libwebp', '-lossless', '1'], 'image/webp'],
  ])('reads %s', async (_name, file, codec, mime) => {
    const dest = path.join(dir, file);
    await run(ffmpegPath, [...lavfiInput('testsrc=size=1234x56'), '-frames:v', '1', ...codec, dest]);
    const handle = await open(dest, 'r');
    try {
      expect(await readImageSize(fileReader(handle), mime)).toEqual({ width: 1234, height: 56 });
    } finally {
      await handle.close();
    }
  });
});

describe('readImageSize on made-up headers', () => {
  it('reads what a PNG header claims, however large', async () => {
    expect(await readImageSize(memory(pngHeader(100_000, 100_000)), 'image/png')).toEqual({ width: 100_000, height: 100_000 });
  });

  it('walks JPEG segments (fill bytes, a large EXIF block) to a progressive frame header', async () => {
    const exif = Buffer.alloc(5000, 0x41);
    const jpeg = Buffer.from([
      0xff,
      0xd8,
      0xff,
      0xe1,
      ...u16be(exif.length + 2),
      ...exif,
      0xff,
      0xff,
      0xff, // fill bytes
      0xc2,
      ...u16be(17),
      8,
      ...u16be(3000),
      ...u16be(4000),
      3,
      1,
      0x22,
      0,
      2,
      0x11,
      1,
      3,
      0x11,
      1,
    ]);
    expect(await readImageSize(memory(jpeg), 'image/jpeg')).toEqual({ width: 4000, height: 3000 });
  });

  it('reads an extended WebP (VP8X) canvas', async () => {
    const webp = Buffer.from([
      ...latin1('RIFF'),
      0,
      0,
      0,
      0,
      ...latin1('WEBPVP8X'),
      10,
      0,
      0,
      0,
      0x10,
      0,
      0,
      0,
      ...u24le(19_999),
      ...u24le(9_999),
    ]);
    expect(await readImageSize(memory(webp), 'image/webp')).toEqual({ width: 20_000, height: 10_000 });
  });

  it.each([
    ['a PNG without IHDR', Buffer.concat([pngHeader(1, 1).subarray(0, 12), Buffer.from('IDAT'), Buffer.alloc(8)]), 'image/png', /no IHDR/],
    ['a PNG cut inside its header', pngHeader(10, 10).subarray(0, 20), 'image/png', /no IHDR/],
    ['a PNG of 0 pixels', pngHeader(0, 480), 'image/png', /declares 0×480 pixels/],
    ['a JPEG whose scan starts before any frame header', Buffer.from([0xff, 0xd8, 0xff, 0xda, 0, 2]), 'image/jpeg', /no frame header/],
    ['a JPEG cut after its first segment', Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 1, 2]), 'image/jpeg', /no frame header/],
    ['JPEG garbage after the signature', Buffer.from([0xff, 0xd8, 0x12, 0x34]), 'image/jpeg', /no frame header/],
    [
      'a WebP with an unknown first chunk',
      Buffer.from([...latin1('RIFF'), 0, 0, 0, 0, ...latin1('WEBPJUNK'), ...Buffer.alloc(14)]),
      'image/webp',
      /found "JUNK"/,
    ],
  ])('refuses %s', async (_name, bytes, mime, message) => {
    const err = await readImageSize(memory(bytes), mime).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadImageHeader);
    expect((err as Error).message).toMatch(message);
  });

  it('stops walking a JPEG made of endless empty segments', async () => {
    const segments = Buffer.alloc(4 * 10_000);
    for (let i = 0; i < 10_000; i++) segments.set([0xff, 0xe1, 0, 2], i * 4);
    let reads = 0;
    const read: ReadAt = async (offset, length) => {
      reads++;
      return memory(Buffer.concat([Buffer.from([0xff, 0xd8]), segments]))(offset, length);
    };
    await expect(readImageSize(read, 'image/jpeg')).rejects.toBeInstanceOf(BadImageHeader);
    expect(reads).toBeLessThanOrEqual(256);
  });
});
