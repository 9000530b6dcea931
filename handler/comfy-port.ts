// Adapts the ComfyUI supervisor and client to the job's ComfyPort: one client per ready ComfyUI,
// and a crash of ComfyUI aborts the prompt that is running at once (COMFY_CRASHED).
import { createWriteStream, existsSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ComfyClient, type ComfyOutputFile, type ComfySupervisor } from '../src/comfy';
import type { ComfyConfig } from '../src/config';
import type { ComfyPort, ComfySession, ComfyVideo } from '../src/job/ports';
import { WorkerError } from '../src/lib/errors';

/** Without a ComfyUI to start or to use, every job fails with this instead of a spawn error. */
export function comfyMissing(config: ComfyConfig): WorkerError | undefined {
  if (config.url || existsSync(path.join(config.dir, 'main.py'))) return undefined;
  return new WorkerError(
    'COMFY_UNAVAILABLE',
    `No ComfyUI to run the workflow: COMFYUI_DIR (${config.dir}) has no main.py and COMFYUI_URL is not set. ` +
      'Set COMFYUI_URL to a running ComfyUI (e.g. http://127.0.0.1:8188 on your GPU box) or COMFYUI_DIR to a ComfyUI checkout with the custom nodes installed.',
  );
}

export function createComfyPort(opts: {
  supervisor: ComfySupervisor | undefined;
  unavailable: WorkerError | undefined;
  timeoutMs: number;
}): ComfyPort {
  const { supervisor } = opts;
  let crashes = new AbortController();
  supervisor?.onCrash((err) => {
    crashes.abort(err);
    crashes = new AbortController();
  });

  return {
    get healthy() {
      return supervisor?.healthy ?? true;
    },
    async ready(signal, logger) {
      if (!supervisor) throw opts.unavailable;
      const endpoint = await supervisor.ready(signal);
      const client = new ComfyClient({ endpoint, logger });
      return createSession(client, () => crashes.signal, opts.timeoutMs);
    },
  };
}

function createSession(client: ComfyClient, crashSignal: () => AbortSignal, timeoutMs: number): ComfySession {
  const known = new Map<ComfyVideo, ComfyOutputFile>();
  let jobFolder: string | undefined;
  let promptId: string | undefined;
  return {
    uploadInput: (file, signal) => client.uploadInput(file, signal),
    async runPrompt(prompt, { signal, onProgress }) {
      const result = await client.runPrompt(prompt, {
        signal: AbortSignal.any([signal, crashSignal()]),
        timeoutMs,
        onProgress,
      });
      jobFolder = result.jobFolder;
      promptId = result.promptId;
      const videos = client.videoOutputs(result.outputs).map((file) => {
        const video: ComfyVideo = { filename: file.filename, subfolder: file.subfolder, type: file.type };
        known.set(video, file);
        return video;
      });
      return { promptId: result.promptId, videos };
    },
    async localPath(video, dir, signal) {
      const file = known.get(video);
      if (!file) throw new WorkerError('INTERNAL', `unknown output ${video.filename}`);
      const opened = await client.openOutput(file, signal);
      if (opened.path) return opened.path;
      const dest = path.join(dir, path.basename(file.filename));
      const stream = opened.stream instanceof Readable ? opened.stream : Readable.fromWeb(opened.stream as never);
      await pipeline(stream, createWriteStream(dest), { signal });
      return dest;
    },
    cleanup: ({ inputs, videos }) =>
      client.cleanup({
        inputs,
        outputs: videos.map((v) => known.get(v)).filter((f): f is ComfyOutputFile => f !== undefined),
        ...(jobFolder ? { jobFolder } : {}),
        ...(promptId ? { promptId } : {}),
      }),
  };
}
