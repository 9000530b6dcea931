// Adapts the ComfyUI supervisor and client to the job's ComfyPort: one client per ready ComfyUI,
// and a crash of ComfyUI aborts the prompt that is running at once (COMFY_CRASHED). src/comfy names
// none of this worker's settings or files; the advice that needs them is added here.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ComfyClient, comfyError, videoOutputs, type ComfySettings, type ComfySupervisor } from '../src/comfy';
import type { ComfyPort, ComfySession } from '../src/job/ports';
import { isWorkerError, WorkerError } from '../src/lib/errors';
import type { HandlerHealth } from '../src/runpod';

/** Without a ComfyUI to start or to use, every job fails with this instead of a spawn error. */
export function comfyMissing(config: ComfySettings): WorkerError | undefined {
  if (config.url || existsSync(path.join(config.dir, 'main.py'))) return undefined;
  return comfyError(
    'COMFY_UNAVAILABLE',
    `No ComfyUI to run the workflow: COMFYUI_DIR (${config.dir}) has no main.py and COMFYUI_URL is not set. ` +
      'Set COMFYUI_URL to a running ComfyUI (e.g. http://127.0.0.1:8188 on your GPU box) or COMFYUI_DIR to a ComfyUI checkout with the custom nodes installed.',
  );
}

export function createComfyPort(opts: {
  supervisor: ComfySupervisor | undefined;
  unavailable: WorkerError | undefined;
  /** Settles before a session is handed out (the start-up GPU check). */
  before?: Promise<void>;
  /** What this worker calls ComfyUI's extra arguments (COMFYUI_ARGS), for the client's advice. */
  extraArgsName?: string;
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
      const endpoint = await supervisor.ready(signal, (s) =>
        logger.info(`waiting for ComfyUI at ${s.url} (${s.lastError ?? 'starting'})`, { comfyui: s.state }),
      );
      await opts.before;
      const client = new ComfyClient({ endpoint, logger, extraArgsName: opts.extraArgsName });
      return createSession(client, () => crashes.signal);
    },
  };
}

/** ComfyUI's state for the local API's /health: the worker is ready only when ComfyUI is. */
export async function comfyHealth(opts: {
  supervisor: ComfySupervisor | undefined;
  unavailable: WorkerError | undefined;
}): Promise<HandlerHealth> {
  if (!opts.supervisor) return { state: 'unhealthy', comfyui: { state: 'unhealthy', lastError: opts.unavailable?.message } };
  const comfyui = await opts.supervisor.checkedStatus();
  return { state: comfyui.state === 'starting' ? 'initializing' : comfyui.state, comfyui };
}

/** The job's deadline is its own signal (JOB_TIMEOUT_S or the local API's executionTimeout): no second one here. */
function createSession(client: ComfyClient, crashSignal: () => AbortSignal): ComfySession {
  let jobFolder: string | undefined;
  let promptId: string | undefined;
  return {
    uploadInput: (file, signal) => withVersionHint(client.uploadInput(file, signal)),
    async runPrompt(prompt, { signal, onProgress }) {
      const result = await withVersionHint(client.runPrompt(prompt, { signal: AbortSignal.any([signal, crashSignal()]), onProgress }));
      jobFolder = result.jobFolder;
      promptId = result.promptId;
      return {
        promptId: result.promptId,
        videos: videoOutputs(result.outputs),
        ...(result.executionMs !== undefined ? { executionMs: result.executionMs } : {}),
      };
    },
    localPath: (video, dir, signal) => client.saveOutput(video, dir, signal),
    cleanup: ({ inputs, videos }) =>
      client.cleanup({ inputs, outputs: videos, ...(jobFolder ? { jobFolder } : {}), ...(promptId ? { promptId } : {}) }),
  };
}

/** An answer the client cannot read most likely comes from a ComfyUI other than the one the image pins. */
async function withVersionHint<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    if (!isWorkerError(err) || err.details.unreadable !== true) throw err;
    throw new WorkerError(err.code, `${err.message.replace(/\.$/, '')}; is ComfyUI the version pinned in workflows/pins.json?`, {
      cause: err,
      details: err.details,
    });
  }
}
