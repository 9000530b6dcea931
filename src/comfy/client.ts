// A thin typed client for one ComfyUI. runPrompt follows the reference's "completion detection that is
// correct": socket opened before queueing with our client_id, socket events as hints and progress,
// GET /history/{id} as the truth, reconnect + /history + /queue after a drop, a deadline on every wait.
import { randomUUID } from 'node:crypto';
import { createWriteStream, openAsBlob } from 'node:fs';
import { copyFile, link, mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { z } from 'zod';
import { WorkerError, isWorkerError } from '../lib/errors';
import type { Logger } from '../lib/logger';
import { retry } from '../lib/retry';
import { CompletionWatch } from './completion';
import type { ComfyEndpoint } from './endpoint';
import { comfyError, executionError, partiallyRejectedError, promptRejectedError } from './errors';
import {
  ExecutionErrorSchema,
  HistoryResponseSchema,
  PromptAcceptedSchema,
  PromptRejectedSchema,
  QueueSchema,
  UploadResponseSchema,
  type HistoryEntry,
  type PromptAccepted,
} from './messages';
import { listOutputFiles, resolveInside, type ComfyFileRef, type ComfyOutputFile } from './outputs';
import { ProgressTracker, type ComfyProgress } from './progress';
import { ComfySocket } from './socket';

export interface ComfyClientOptions {
  endpoint: ComfyEndpoint;
  logger: Logger;
  /** What the host calls ComfyUI's extra arguments, named where one has to change. */
  extraArgsName?: string;
  fetch?: typeof fetch;
  WebSocket?: typeof WebSocket;
  /** Each HTTP call (a /history or /queue poll: at most a third of lostAfterMs). Default 30 s. */
  requestTimeoutMs?: number;
  /** Wait for the socket before queueing; past it we queue anyway and rely on polling. Default 10 s. */
  socketOpenTimeoutMs?: number;
  /** /history poll while the socket is down. Default 1 s. */
  pollIntervalMs?: number;
  /** /history poll while the socket is up: a net under missed events. Default 5 s. */
  idlePollIntervalMs?: number;
  /** After a completion hint, re-read history this often (it is written after the event). Default 30 ms. */
  settlePollMs?: number;
  /** ComfyUI unreachable (HTTP and socket) this long during a prompt → COMFY_CRASHED. Default 15 s. */
  lostAfterMs?: number;
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
}

export interface RunPromptOptions {
  /** Ends the call: the prompt is interrupted and the call rejects with the signal's reason (a
   * WorkerError as given, else CANCELLED). The job's deadline normally comes this way. */
  signal: AbortSignal;
  /** An extra deadline of this call alone; on expiry the prompt is interrupted and it rejects with TIMEOUT. */
  timeoutMs?: number;
  onProgress?: (p: ComfyProgress) => void;
}

export interface RunPromptResult {
  promptId: string;
  /** Every file the prompt's nodes listed (videoOutputs() picks the videos). */
  outputs: ComfyOutputFile[];
  /** ComfyUI's own execution time (execution_start → execution_success, its timestamps in /history), without
   * the socket, queueing and completion detection around it; absent when its history lacks them. */
  executionMs?: number;
  /** The per-prompt folder every filename_prefix was put under (unique, so ComfyUI's cache never
   * replays an earlier job's file names); pass it to cleanup(). */
  jobFolder: string;
}

export interface CleanupTarget {
  inputs: readonly string[];
  outputs: readonly ComfyFileRef[];
  jobFolder?: string;
  promptId?: string;
}

const CLEANUP_TIMEOUT_MS = 3000;

export class ComfyClient {
  private readonly fetch: typeof fetch;
  private readonly baseUrl: string;

  constructor(private readonly opts: ComfyClientOptions) {
    this.fetch = opts.fetch ?? globalThis.fetch;
    this.baseUrl = opts.endpoint.baseUrl.replace(/\/+$/, '');
  }

  /** Puts an image or video into ComfyUI's input folder; returns the name to put in the workflow. */
  async uploadInput(file: { path: string; name: string }, signal?: AbortSignal): Promise<string> {
    const { inputDir } = this.opts.endpoint;
    if (inputDir) return placeInput(inputDir, file);
    const blob = await openAsBlob(file.path);
    const res = await retry(
      async () => {
        const form = new FormData();
        form.append('image', blob, file.name);
        form.append('type', 'input');
        const r = await this.request('/upload/image', { method: 'POST', body: form }, signal);
        if (r.status === 413) {
          throw comfyError(
            'INVALID_INPUT',
            `Input "${file.name}" (${blob.size} bytes) is larger than ComfyUI accepts; raise --max-upload-size in ${this.opts.extraArgsName ?? "ComfyUI's arguments"}.`,
            {
              details: { field: file.name, bytes: blob.size },
            },
          );
        }
        if (!r.ok) throw await this.httpError('upload an input', r);
        return readAnswer(UploadResponseSchema, await readJson(r, 'POST /upload/image'), 'POST /upload/image');
      },
      { attempts: 3, minDelayMs: 200, signal, shouldRetry: ({ error }) => isWorkerError(error) && error.retryable },
    );
    return res.subfolder ? `${res.subfolder}/${res.name}` : res.name;
  }

  async runPrompt(prompt: Record<string, unknown>, opts: RunPromptOptions): Promise<RunPromptResult> {
    const { timeoutMs } = opts;
    const signal = timeoutMs === undefined ? opts.signal : AbortSignal.any([opts.signal, AbortSignal.timeout(timeoutMs)]);
    const reason = (): WorkerError =>
      opts.signal.aborted
        ? isWorkerError(opts.signal.reason)
          ? opts.signal.reason
          : comfyError('CANCELLED', 'The job was cancelled while ComfyUI ran it.', { cause: opts.signal.reason })
        : comfyError('TIMEOUT', `ComfyUI did not finish the workflow within ${Math.round((timeoutMs ?? 0) / 1000)} s.`, {
            details: { timeoutMs },
          });

    const ourId = randomUUID();
    const clientId = randomUUID();
    const jobFolder = `job-${ourId}`;
    const graph = withJobFolder(prompt, jobFolder);
    const log = this.opts.logger.child({ comfyClientId: clientId });
    const socket = new ComfySocket({
      baseUrl: this.baseUrl,
      clientId,
      logger: log,
      ...(this.opts.WebSocket ? { WebSocket: this.opts.WebSocket } : {}),
      ...(this.opts.reconnectMinMs !== undefined ? { reconnectMinMs: this.opts.reconnectMinMs } : {}),
      ...(this.opts.reconnectMaxMs !== undefined ? { reconnectMaxMs: this.opts.reconnectMaxMs } : {}),
    });
    let promptId: string | undefined;
    try {
      const opened = await raceAbort(socket.open(this.opts.socketOpenTimeoutMs ?? 10_000), signal);
      if (!opened) log.warn('ComfyUI websocket did not open in time; queueing anyway and polling /history');
      // From here the prompt may be queued (even when the answer to POST /prompt is lost): every failure
      // abandons it, or it would keep the GPU busy and the next job would queue behind it.
      promptId = ourId;
      const accepted = await this.queuePrompt(graph, clientId, ourId, signal);
      promptId = accepted.prompt_id; // older builds ignore our id: the response is the truth
      // a partly rejected prompt is queued all the same; the catch below abandons it
      if (Object.keys(accepted.node_errors).length > 0) throw partiallyRejectedError(accepted.node_errors);
      log.info('ComfyUI prompt queued', { promptId });
      const progress = opts.onProgress ? new ProgressTracker(graph, opts.onProgress) : undefined;
      const watch = new CompletionWatch(socket, promptId, log, progress ? (m) => progress.handle(m) : undefined);
      const entry = await this.monitor(promptId, watch, signal).finally(() => watch.close());
      const outputs = listOutputFiles(entry.outputs);
      const failure = failureOf(entry);
      if (failure) {
        if (failure.code === 'OUT_OF_MEMORY') await this.free().catch(() => {});
        throw failure;
      }
      opts.onProgress?.({ percent: 100 });
      const executionMs = executionTime(entry);
      return { promptId, outputs, jobFolder, ...(executionMs !== undefined ? { executionMs } : {}) };
    } catch (err) {
      const why = signal.aborted ? reason() : err;
      if (promptId !== undefined) await this.abandon(promptId, log);
      throw why;
    } finally {
      socket.close();
    }
  }

  /**
   * A file of the result as a local path: ComfyUI's own file when it is local (nothing copied), else
   * downloaded from /view into `dir` (the caller owns `dir` and deletes it).
   */
  async saveOutput(file: ComfyFileRef, dir: string, signal?: AbortSignal): Promise<string> {
    const localDir = this.dirFor(file.type);
    if (localDir) {
      const full = resolveInside(localDir, file.subfolder, file.filename);
      const exists = await stat(full).then(
        (s) => s.isFile(),
        () => false,
      );
      if (!exists) throw missingOutput(file);
      return full;
    }
    const dest = resolveInside(dir, '', file.filename);
    const q = new URLSearchParams({ filename: file.filename, subfolder: file.subfolder, type: file.type });
    // no per-request deadline: a large video streams as long as it takes, within the caller's signal
    const r = await this.request(`/view?${q.toString()}`, { method: 'GET' }, signal, 0);
    if (r.status === 404) throw missingOutput(file);
    if (!r.ok || !r.body) throw await this.httpError('read an output', r);
    try {
      await pipeline(r.body, createWriteStream(dest), signal ? { signal } : {});
    } catch (err) {
      await rm(dest, { force: true });
      if (signal?.aborted) throw err;
      throw comfyError(
        'COMFY_UNAVAILABLE',
        `Could not download ${path.join(file.subfolder, file.filename)} from ComfyUI: ${(err as Error).message}`,
        {
          cause: err,
          retryable: true,
          details: { filename: file.filename, subfolder: file.subfolder },
        },
      );
    }
    return dest;
  }

  /** Deletes a job's inputs and outputs (local dirs only) and its history entry; never throws. */
  async cleanup(target: CleanupTarget): Promise<void> {
    const { inputDir, outputDir, tempDir } = this.opts.endpoint;
    const paths: string[] = [];
    const add = (dir: string | undefined, subfolder: string, filename: string): void => {
      if (!dir) return;
      try {
        paths.push(resolveInside(dir, subfolder, filename));
      } catch (err) {
        this.opts.logger.warn('ComfyUI cleanup skipped a path outside its folder', { error: err });
      }
    };
    for (const name of target.inputs) add(inputDir, path.dirname(name), path.basename(name));
    for (const f of target.outputs) add(this.dirFor(f.type), f.subfolder, f.filename);
    if (target.jobFolder) for (const dir of [outputDir, tempDir]) add(dir, '', target.jobFolder);
    await Promise.all(
      paths.map((p) =>
        rm(p, { recursive: true, force: true }).catch((err: unknown) =>
          this.opts.logger.warn('could not delete a ComfyUI file', { path: p, error: err }),
        ),
      ),
    );
    if (target.promptId) {
      await this.post('/history', { delete: [target.promptId] }, AbortSignal.timeout(CLEANUP_TIMEOUT_MS)).catch(() => {});
    }
  }

  /** Asks ComfyUI to unload models and free memory after the current prompt. */
  async free(): Promise<void> {
    await this.post('/free', { unload_models: true, free_memory: true });
  }

  // ---- internals -----------------------------------------------------------------------------------

  private async queuePrompt(graph: Record<string, unknown>, clientId: string, ourId: string, signal: AbortSignal): Promise<PromptAccepted> {
    // Not retried: a lost answer may still have queued the prompt.
    const r = await this.request(
      '/prompt',
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: graph, client_id: clientId, prompt_id: ourId }),
      },
      signal,
    );
    const body: unknown = await r.json().catch(() => undefined);
    if (r.status === 400) {
      const rejected = PromptRejectedSchema.safeParse(body);
      if (rejected.success) throw promptRejectedError(rejected.data);
    }
    const accepted = r.ok ? PromptAcceptedSchema.safeParse(body) : undefined;
    if (!accepted?.success) {
      throw comfyError('COMFY_UNAVAILABLE', `ComfyUI answered POST /prompt with HTTP ${r.status}: ${JSON.stringify(body)?.slice(0, 300)}`, {
        details: { status: r.status },
      });
    }
    return accepted.data;
  }

  /** Polls /history until the prompt's entry is there; watch.close() is the caller's. */
  private async monitor(promptId: string, watch: CompletionWatch, signal: AbortSignal): Promise<HistoryEntry> {
    const lostAfterMs = this.opts.lostAfterMs ?? 15_000;
    // one stalled request alone must not outlast lostAfterMs: the verdict needs several polls unanswered
    const pollTimeoutMs = Math.max(1, Math.min(this.opts.requestTimeoutMs ?? 30_000, Math.floor(lostAfterMs / 3)));
    const intervals = {
      settleMs: this.opts.settlePollMs ?? 30,
      idleMs: this.opts.idlePollIntervalMs ?? 5000,
      downMs: this.opts.pollIntervalMs ?? 1000,
    };
    for (;;) {
      await watch.nextPoll(intervals, signal);
      try {
        const entry = await this.history(promptId, signal, pollTimeoutMs);
        watch.contact();
        if (entry) return entry;
        if (watch.takeQueueCheck() && !(await this.isQueued(promptId, signal, pollTimeoutMs))) {
          // it may have finished between the two reads
          const again = await this.history(promptId, signal, pollTimeoutMs);
          if (again) return again;
          throw comfyError(
            'COMFY_CRASHED',
            'ComfyUI lost the prompt (not running, not queued, no history): it restarted or its queue was cleared.',
            { details: { promptId } },
          );
        }
      } catch (err) {
        if (signal.aborted || (isWorkerError(err) && !err.retryable)) throw err;
        if (watch.silentForMs() > lostAfterMs) {
          throw comfyError(
            'COMFY_CRASHED',
            `ComfyUI stopped answering for ${Math.round(lostAfterMs / 1000)} s while running the workflow.`,
            { cause: err, details: { promptId } },
          );
        }
        watch.requestQueueCheck();
      }
    }
  }

  private async history(promptId: string, signal: AbortSignal, timeoutMs: number): Promise<HistoryEntry | undefined> {
    const r = await this.request(`/history/${encodeURIComponent(promptId)}`, { method: 'GET' }, signal, timeoutMs);
    if (!r.ok) throw await this.httpError('read /history', r);
    return readAnswer(HistoryResponseSchema, await readJson(r, 'GET /history'), 'GET /history')[promptId];
  }

  private async isQueued(promptId: string, signal: AbortSignal, timeoutMs: number): Promise<boolean> {
    const r = await this.request('/queue', { method: 'GET' }, signal, timeoutMs);
    if (!r.ok) throw await this.httpError('read /queue', r);
    const q = readAnswer(QueueSchema, await readJson(r, 'GET /queue'), 'GET /queue');
    return [...q.queue_running, ...q.queue_pending].some((row) => row[1] === promptId);
  }

  /** Any failure once queued: stop our prompt if it runs, drop it if pending. Best effort, bounded, never throws. */
  private async abandon(promptId: string, log: Logger): Promise<void> {
    const signal = AbortSignal.timeout(CLEANUP_TIMEOUT_MS);
    const results = await Promise.allSettled([
      this.post('/interrupt', { prompt_id: promptId }, signal),
      this.post('/queue', { delete: [promptId] }, signal),
    ]);
    for (const r of results) if (r.status === 'rejected') log.warn('could not stop the ComfyUI prompt', { promptId, error: r.reason });
  }

  private async post(route: string, body: unknown, signal?: AbortSignal): Promise<void> {
    const r = await this.request(
      route,
      { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) },
      signal,
    );
    if (!r.ok) throw await this.httpError(`POST ${route}`, r);
    await r.body?.cancel();
  }

  /** fetch with a per-request deadline; network failures become retryable COMFY_UNAVAILABLE. */
  private async request(
    route: string,
    init: RequestInit,
    signal?: AbortSignal,
    timeoutMs = this.opts.requestTimeoutMs ?? 30_000,
  ): Promise<Response> {
    const signals = [signal, timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined].filter((s): s is AbortSignal => s !== undefined);
    try {
      return await this.fetch(`${this.baseUrl}${route}`, { ...init, signal: AbortSignal.any(signals) });
    } catch (err) {
      if (signal?.aborted) throw err;
      throw comfyError('COMFY_UNAVAILABLE', `ComfyUI is unreachable (${route.split('?')[0]}): ${(err as Error).message}`, {
        cause: err,
        retryable: true,
      });
    }
  }

  private async httpError(what: string, r: Response): Promise<WorkerError> {
    const text = await r.text().catch(() => '');
    return comfyError('COMFY_UNAVAILABLE', `ComfyUI could not ${what}: HTTP ${r.status} ${text.slice(0, 300)}`, {
      retryable: r.status >= 500 || r.status === 429,
      details: { status: r.status },
    });
  }

  private dirFor(type: ComfyFileRef['type']): string | undefined {
    const e = this.opts.endpoint;
    return type === 'output' ? e.outputDir : type === 'temp' ? e.tempDir : e.inputDir;
  }
}

/**
 * A ComfyUI in the same container reads its input folder directly: a hard link (or a copy across file
 * systems) costs nothing for a large pose video and is not subject to ComfyUI's --max-upload-size.
 */
async function placeInput(inputDir: string, file: { path: string; name: string }): Promise<string> {
  const name = path.basename(file.name);
  const dest = resolveInside(inputDir, '', name);
  await mkdir(inputDir, { recursive: true });
  await rm(dest, { force: true }); // a leftover of an earlier job that died with the same name
  try {
    await link(file.path, dest);
  } catch {
    await copyFile(file.path, dest);
  }
  return name;
}

/** Puts every `filename_prefix` under a per-prompt folder: new names per job, so no cache replay. */
function withJobFolder(prompt: Record<string, unknown>, folder: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [id, node] of Object.entries(prompt)) {
    const n = node as { inputs?: Record<string, unknown> };
    const prefix = n.inputs?.filename_prefix;
    out[id] =
      typeof prefix === 'string' ? { ...n, inputs: { ...n.inputs, filename_prefix: `${folder}/${prefix.replace(/^\/+/, '')}` } } : node;
  }
  return out;
}

function failureOf(entry: HistoryEntry): WorkerError | undefined {
  const status = entry.status;
  if (!status || status.status_str === 'success') return undefined;
  for (const [type, data] of status.messages) {
    if (type === 'execution_error') return executionError(readAnswer(ExecutionErrorSchema, data, 'GET /history (execution_error)'));
    if (type === 'execution_interrupted') {
      const d = readAnswer(ExecutionErrorSchema, data, 'GET /history (execution_interrupted)');
      return comfyError(
        'EXECUTION_FAILED',
        `ComfyUI interrupted the workflow at node ${d.node_id ?? '?'} (${d.node_type ?? '?'}); someone else sent /interrupt.`,
        { details: { nodeId: d.node_id, nodeType: d.node_type } },
      );
    }
  }
  return comfyError('EXECUTION_FAILED', `ComfyUI reported status "${status.status_str}" without an error message.`);
}

function executionTime(entry: HistoryEntry): number | undefined {
  const at = (type: string): number | undefined => {
    const data = entry.status?.messages.find(([t]) => t === type)?.[1] as { timestamp?: unknown } | undefined;
    return typeof data?.timestamp === 'number' ? data.timestamp : undefined;
  };
  const start = at('execution_start');
  const end = at('execution_success');
  return start !== undefined && end !== undefined && end >= start ? end - start : undefined;
}

function missingOutput(file: ComfyFileRef): WorkerError {
  return comfyError(
    'OUTPUT_MISSING',
    `ComfyUI listed ${path.join(file.subfolder, file.filename)} (${file.type}) but the file is not there.`,
    {
      details: { filename: file.filename, subfolder: file.subfolder, type: file.type },
    },
  );
}

/** A body that is not JSON cannot be read by asking again; a body cut off mid-way can. */
async function readJson(r: Response, what: string): Promise<unknown> {
  try {
    return await r.json();
  } catch (err) {
    if (err instanceof SyntaxError) throw unreadable(what, err.message, err);
    throw comfyError('COMFY_UNAVAILABLE', `ComfyUI's answer to ${what} was cut off: ${(err as Error).message}`, {
      cause: err,
      retryable: true,
    });
  }
}

/** Parses a ComfyUI answer; one of another shape fails the job at once (asking again gives the same). */
function readAnswer<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  return unreadable(what, issue ? `${issue.path.join('.') || '(top)'}: ${issue.message}` : parsed.error.message, parsed.error);
}

function unreadable(what: string, problem: string, cause: unknown): never {
  throw comfyError('INTERNAL', `ComfyUI's answer to ${what} is not what this worker reads (${problem}).`, {
    cause,
    details: { answer: what, unreadable: true },
  });
}

function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
