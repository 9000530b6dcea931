// What an input video really holds, read with ffprobe before anything is queued: its first video
// stream's codec and size, how long it is, how many frames its header promises and how many the file
// holds (a cut-off download has fewer), and whether a frame decodes at all.
import { FFPROBE_TIMEOUT_MS, ffprobeMissingMessage, isFfprobeMissing, parseRate, runFfprobe, type FfprobeOptions } from '../lib/ffprobe';
import { mediaError } from './errors';

export interface VideoFacts {
  codec: string;
  width: number;
  height: number;
  /** Seconds, from the stream or else the container; undefined when neither says. */
  durationS: number | undefined;
  /** Frames the header promises: the container's count, else duration × frame rate; undefined when unknown. */
  declaredFrames: number | undefined;
  /** Packets actually in the file (demuxed, not decoded). */
  frames: number;
  /** Frames decoded from the start (0: the stream does not decode). */
  decodedFrames: number;
}

/** ffprobe could not open the file as a video; `reason` is its own last words. */
export class UnreadableVideo extends Error {
  override readonly name = 'UnreadableVideo';
  constructor(readonly reason: string) {
    super(reason);
  }
}

interface Probed {
  streams?: {
    codec_name?: string;
    width?: number;
    height?: number;
    duration?: string;
    nb_frames?: string;
    nb_read_packets?: string;
    nb_read_frames?: string;
    avg_frame_rate?: string;
  }[];
  format?: { duration?: string };
}

const positive = (v: string | undefined): number | undefined => {
  const n = Number(v);
  return Number.isFinite(n) && n > 0 ? n : undefined;
};

/** ffprobe's own words, without log prefixes or the file's path (a temp path tells the user nothing). */
function ffprobeReason(error: unknown, file: string, timeoutMs: number): string {
  if ((error as { killed?: boolean }).killed) return `ffprobe did not finish reading it within ${timeoutMs / 1000} s`;
  const lines = ((error as { stderr?: string }).stderr ?? '')
    .split('\n')
    .map((l) =>
      l
        .replace(/^\[[^\]]*\]\s*/, '')
        .split(file)
        .join('the file')
        .replace(/^the file:\s*/, '')
        .trim(),
    )
    .filter((l) => l !== '' && !l.startsWith('Last message repeated'));
  const reason = [...new Set(lines)].slice(0, 3).join('; ');
  return (reason || (error as Error).message || 'unreadable').slice(0, 200);
}

async function probe(file: string, args: string[], opts: FfprobeOptions): Promise<Probed> {
  let out: string;
  try {
    out = await runFfprobe(['-v', 'error', '-select_streams', 'v:0', ...args, '-of', 'json', file], opts);
  } catch (error) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    if (isFfprobeMissing(error, file)) {
      throw mediaError('INTERNAL', ffprobeMissingMessage(opts), { cause: error });
    }
    throw new UnreadableVideo(ffprobeReason(error, file, opts.timeoutMs ?? FFPROBE_TIMEOUT_MS));
  }
  return JSON.parse(out) as Probed;
}

/**
 * Two ffprobe runs: the header plus a count of every packet (reads the file once, decodes nothing),
 * then one frame decoded from the start (a stream of a codec ffmpeg cannot decode yields none).
 */
export async function probeInputVideo(file: string, opts: FfprobeOptions): Promise<VideoFacts | undefined> {
  const header = await probe(
    file,
    ['-count_packets', '-show_entries', 'stream=codec_name,width,height,duration,nb_frames,nb_read_packets,avg_frame_rate:format=duration'],
    opts,
  );
  const s = header.streams?.[0];
  if (!s) return undefined;
  const decoded = await probe(file, ['-read_intervals', '%+#1', '-count_frames', '-show_entries', 'stream=nb_read_frames'], opts);
  const durationS = positive(s.duration) ?? positive(header.format?.duration);
  const rate = parseRate(s.avg_frame_rate);
  return {
    codec: s.codec_name ?? 'unknown',
    width: s.width ?? 0,
    height: s.height ?? 0,
    durationS,
    declaredFrames: positive(s.nb_frames) ?? (durationS !== undefined && rate > 0 ? Math.round(durationS * rate) : undefined),
    frames: Number(s.nb_read_packets) || 0,
    decodedFrames: Number(decoded.streams?.[0]?.nb_read_frames) || 0,
  };
}
