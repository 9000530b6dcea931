// Tiny real media files made by ffmpeg (from the @ffmpeg-installer npm package) for input and probe tests.
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';

const require = createRequire(import.meta.url);
export const ffmpegPath: string = (require('@ffmpeg-installer/ffmpeg') as { path: string }).path;
/** ffmpeg's quiet, overwriting prefix with a lavfi test source as the input. */
export const lavfiInput = (source: string): string[] => ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', source];
export const ffprobePath: string = (require('@ffprobe-installer/ffprobe') as { path: string }).path;

const run = promisify(execFile);

export interface Fixtures {
  png: string;
  jpg: string;
  mp4: string;
  mov: string;
  webm: string;
}

/** Writes a 32×48 PNG/JPEG and a 32×48, 9-frame, 8 fps MP4/MOV/WebM into `dir`. */
export async function makeFixtures(dir: string): Promise<Fixtures> {
  const f: Fixtures = {
    png: path.join(dir, 'person.png'),
    jpg: path.join(dir, 'person.jpg'),
    mp4: path.join(dir, 'dance.mp4'),
    mov: path.join(dir, 'dance.mov'),
    webm: path.join(dir, 'dance.webm'),
  };
  const src = [...lavfiInput('testsrc=size=32x48:rate=8')];
  await Promise.all([
    run(ffmpegPath, [...src, '-frames:v', '1', f.png]),
    run(ffmpegPath, [...src, '-frames:v', '1', f.jpg]),
    run(ffmpegPath, [...src, '-frames:v', '9', '-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-movflags', '+faststart', f.mp4]),
  ]);
  await Promise.all([
    run(ffmpegPath, [...src, '-frames:v', '9', '-pix_fmt', 'yuv420p', '-c:v', 'libx264', f.mov]),
    run(ffmpegPath, [...src, '-frames:v', '9', '-c:v', 'libvpx', '-b:v', '100k', f.webm]),
  ]);
  return f;
}

const u32be = (n: number): number[] => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];

/** A PNG signature and IHDR claiming `width`×`height`, and no image data: only the header is read. */
export function pngHeader(width: number, height: number): Buffer {
  return Buffer.from([
    0x89,
    0x50,
    0x4e,
    0x47,
    0x0d,
    0x0a,
    0x1a,
    0x0a,
    ...u32be(13),
    ...Buffer.from('IHDR'),
    ...u32be(width),
    ...u32be(height),
    8,
    2,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
  ]);
}

export interface BadVideos {
  /** 40 frames, moov first: cut in the middle of its data, the header still promises 40. */
  cutAfterHeader: string;
  /** moov last: cut before it, so no header at all. */
  cutBeforeHeader: string;
  /** Intact container, every data byte overwritten: nothing decodes. */
  garbled: string;
  /** An MP4 container holding only audio. */
  audioOnly: string;
}

/** Videos that pass the magic-byte sniff but must not reach ComfyUI. */
export async function makeBadVideos(dir: string): Promise<BadVideos> {
  const v: BadVideos = {
    cutAfterHeader: path.join(dir, 'cut-after-header.mp4'),
    cutBeforeHeader: path.join(dir, 'cut-before-header.mp4'),
    garbled: path.join(dir, 'garbled.mp4'),
    audioOnly: path.join(dir, 'audio-only.mp4'),
  };
  const whole = { faststart: path.join(dir, 'whole-faststart.mp4'), plain: path.join(dir, 'whole-plain.mp4') };
  const src = [...lavfiInput('testsrc=size=32x48:rate=8'), '-frames:v', '40', '-pix_fmt', 'yuv420p', '-c:v', 'libx264'];
  await Promise.all([
    run(ffmpegPath, [...src, '-movflags', '+faststart', whole.faststart]),
    run(ffmpegPath, [...src, whole.plain]),
    run(ffmpegPath, [...lavfiInput('sine=duration=1'), '-c:a', 'aac', v.audioOnly]),
  ]);
  const faststart = await readFile(whole.faststart);
  const mdat = faststart.indexOf('mdat');
  await writeFile(v.cutAfterHeader, faststart.subarray(0, mdat + Math.floor((faststart.length - mdat) / 3)));
  const plain = await readFile(whole.plain);
  await writeFile(v.cutBeforeHeader, plain.subarray(0, plain.indexOf('moov') - 8));
  const garbled = Buffer.from(faststart);
  garbled.fill(0x55, mdat + 4);
  await writeFile(v.garbled, garbled);
  return v;
}
