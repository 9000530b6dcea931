// Tiny real media files made by ffmpeg (from the @ffmpeg-installer npm package) for input and probe tests.
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';

const require = createRequire(import.meta.url);
export const ffmpegPath: string = (require('@ffmpeg-installer/ffmpeg') as { path: string }).path;
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
  const src = ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=32x48:rate=8'];
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
