// Output metadata read from the file itself with ffprobe (never from the workflow's settings).
import { stat } from 'node:fs/promises';
import { ffprobeMissingMessage, isFfprobeMissing, parseRate, runFfprobe, type FfprobeOptions } from '../lib/ffprobe';
import { storageError } from './errors';

export interface VideoInfo {
  width: number;
  height: number;
  frames: number;
  fps: number;
  bytes: number;
}

/** The ffprobe runner's own options (binary, timeout, signal). */
export type ProbeOptions = FfprobeOptions;

interface ProbeStream {
  width?: number;
  height?: number;
  nb_frames?: string;
  nb_read_packets?: string;
  avg_frame_rate?: string;
  r_frame_rate?: string;
}

async function probeStream(path: string, countPackets: boolean, opts: ProbeOptions): Promise<ProbeStream | undefined> {
  const args = ['-v', 'error', '-select_streams', 'v:0'];
  if (countPackets) args.push('-count_packets');
  args.push('-show_entries', 'stream=width,height,nb_frames,nb_read_packets,avg_frame_rate,r_frame_rate', '-of', 'json', path);
  const out = JSON.parse(await runFfprobe(args, opts)) as { streams?: ProbeStream[] };
  return out.streams?.[0];
}

export async function probeVideo(path: string, opts: ProbeOptions = {}): Promise<VideoInfo> {
  try {
    const { size } = await stat(path);
    let s = await probeStream(path, false, opts);
    if (!s) throw new Error('no video stream');
    // MP4 headers carry the frame count; WebM/MKV do not, so count packets there.
    if (!Number(s.nb_frames)) s = (await probeStream(path, true, opts)) ?? s;
    const frames = Number(s.nb_frames) || Number(s.nb_read_packets) || 0;
    const fps = parseRate(s.avg_frame_rate) || parseRate(s.r_frame_rate);
    if (!s.width || !s.height) throw new Error('video stream without a size');
    return { width: s.width, height: s.height, frames, fps, bytes: size };
  } catch (error) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    if (isFfprobeMissing(error, path)) {
      throw storageError('INTERNAL', ffprobeMissingMessage(opts), { cause: error });
    }
    const reason = (error as { stderr?: string }).stderr?.trim() || (error as Error).message;
    throw storageError('OUTPUT_MISSING', `Output ${path} is not a readable video: ${reason}`, {
      cause: error,
      details: { path },
    });
  }
}
