// RunPod's internal job API as the worker sees it: take, done, stream, stop. One outcome per status
// (rp-py `rp_job.get_job`, `rp_http`, `get_stop_signals`); headers are built per request, never shared.
import type { Logger } from '../lib/logger';
import type { HttpAnswer, HttpTransport } from './http-transport';
import { batchTakeUrl, isAddressableId, jobUrl, stopUrl, takeUrl, withQuery } from './urls';
import type { RunpodJob } from './types';
import { runpodError } from './errors';

export interface JobApiOptions {
  takeTemplate: string;
  doneTemplate: string | undefined;
  streamTemplate: string | undefined;
  apiKey: string | undefined;
  workerId: string;
  transport: HttpTransport;
  logger: Logger;
  userAgent: string;
  /** Bound on one long poll (take, stop). rp-py: 90 s. */
  pollTimeoutMs: number;
  /** Bound on one result / stream / progress post. */
  postTimeoutMs: number;
}

export type TakeResult =
  | { kind: 'jobs'; jobs: RunpodJob[] }
  | { kind: 'none' } // 204, empty or non-JSON body, poll timeout
  | { kind: 'none-400' } // 400: "no job" when FlashBoot is on
  | { kind: 'throttled' } // 429
  | { kind: 'failed'; error: unknown }; // other status, network error

export type StopPollResult = { kind: 'ids'; ids: string[] } | { kind: 'throttled' } | { kind: 'failed'; error: unknown };

function isJob(v: unknown): v is RunpodJob {
  return typeof v === 'object' && v !== null && typeof (v as { id?: unknown }).id === 'string' && 'input' in v;
}

function isOk(res: HttpAnswer): boolean {
  return res.status >= 200 && res.status < 300;
}

function isJson(res: HttpAnswer): boolean {
  return res.contentType.toLowerCase().startsWith('application/json');
}

export class JobApi {
  readonly stopUrl: string | undefined;
  private readonly takeUrl: string;

  constructor(private readonly opts: JobApiOptions) {
    this.takeUrl = takeUrl(opts.takeTemplate, opts.workerId);
    this.stopUrl = stopUrl(this.takeUrl);
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    // RunPod wants the raw key, no `Bearer`.
    return {
      ...(this.opts.apiKey ? { Authorization: this.opts.apiKey } : {}),
      'User-Agent': this.opts.userAgent,
      ...extra,
    };
  }

  /**
   * One long poll for `need` jobs; `inProgress` = this worker holds an unfinished job. `onSent` runs
   * once the request is on its way.
   */
  async take(need: number, inProgress: boolean, signal: AbortSignal, onSent?: () => void): Promise<TakeResult> {
    const flag = inProgress ? 1 : 0;
    const url =
      need > 1
        ? withQuery(batchTakeUrl(this.takeUrl), { batch_size: need, job_in_progress: flag })
        : withQuery(this.takeUrl, { job_in_progress: flag });
    let res: HttpAnswer;
    const timeout = AbortSignal.timeout(this.opts.pollTimeoutMs);
    try {
      res = await this.opts.transport(url, {
        method: 'GET',
        headers: this.headers({ 'Content-Type': 'application/json' }),
        signal: AbortSignal.any([signal, timeout]),
        ...(onSent ? { onSent } : {}),
      });
    } catch (error) {
      if (timeout.aborted && !signal.aborted) return { kind: 'none' };
      return { kind: 'failed', error };
    }
    const { text } = res;
    if (res.status === 204) return { kind: 'none' };
    if (res.status === 400) return { kind: 'none-400' };
    if (res.status === 429) return { kind: 'throttled' };
    if (!isOk(res))
      return {
        kind: 'failed',
        error: runpodError('INTERNAL', `job take answered HTTP ${res.status}`, { details: { status: res.status }, retryable: true }),
      };
    if (!isJson(res) || text.trim() === '') return { kind: 'none' };
    let payload: unknown;
    try {
      payload = JSON.parse(text);
    } catch {
      this.opts.logger.warn('job take returned invalid JSON; treating it as no job', { status: res.status });
      return { kind: 'none' };
    }
    const items = Array.isArray(payload) ? payload : [payload];
    const jobs: RunpodJob[] = [];
    for (const item of items) {
      if (!isJob(item))
        this.opts.logger.error('job take returned a job without a string `id` and an `input`; dropped it', { job: summarise(item) });
      // Its result could only be posted under another URL; RunPod times the job out instead.
      else if (!isAddressableId(item.id))
        this.opts.logger.error('job take returned a job whose id no URL can carry (empty, "." or ".."); dropped it', {
          job: summarise(item),
        });
      else jobs.push(item);
    }
    return jobs.length > 0 ? { kind: 'jobs', jobs } : { kind: 'none' };
  }

  /** POST to the job-done URL; throws a WorkerError carrying `details.status` on a non-2xx answer. */
  async postDone(jobId: string, text: string, isStream: boolean, signal?: AbortSignal): Promise<void> {
    if (!this.opts.doneTemplate) throw runpodError('CONFIG_INVALID', 'RUNPOD_WEBHOOK_POST_OUTPUT is not set; results cannot be posted');
    return this.post(
      withQuery(jobUrl(this.opts.doneTemplate, this.opts.workerId, jobId), { isStream: String(isStream) }),
      jobId,
      text,
      signal,
    );
  }

  /** POST one stream chunk; rp-py always sends `isStream=false` here. */
  async postStream(jobId: string, text: string, signal?: AbortSignal): Promise<void> {
    if (!this.opts.streamTemplate)
      throw runpodError('CONFIG_INVALID', 'RUNPOD_WEBHOOK_POST_STREAM is not set; stream chunks cannot be posted');
    return this.post(withQuery(jobUrl(this.opts.streamTemplate, this.opts.workerId, jobId), { isStream: 'false' }), jobId, text, signal);
  }

  private async post(url: string, jobId: string, text: string, signal?: AbortSignal): Promise<void> {
    const timeout = AbortSignal.timeout(this.opts.postTimeoutMs);
    let res: HttpAnswer;
    try {
      res = await this.opts.transport(url, {
        method: 'POST',
        // rp-py's exact wire format: form content type over a JSON body, and a `charset` header. The id
        // is encoded as in the URL: a header cannot carry every character an id may hold.
        headers: this.headers({
          'Content-Type': 'application/x-www-form-urlencoded',
          charset: 'utf-8',
          'X-Request-ID': encodeURIComponent(jobId),
        }),
        body: text,
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (err) {
      throw runpodError('INTERNAL', `posting to RunPod failed: ${(err as Error).message}`, {
        cause: err,
        retryable: true,
        details: { network: true },
      });
    }
    if (!isOk(res)) {
      const retryable = res.status === 408 || res.status === 429 || res.status >= 500;
      throw runpodError('INTERNAL', `RunPod answered HTTP ${res.status} to a job post`, { retryable, details: { status: res.status } });
    }
  }

  /** One long poll of the stop channel (caller checks `stopUrl` first). */
  async pollStop(signal: AbortSignal): Promise<StopPollResult> {
    if (!this.stopUrl) return { kind: 'ids', ids: [] };
    const timeout = AbortSignal.timeout(this.opts.pollTimeoutMs);
    let res: HttpAnswer;
    try {
      res = await this.opts.transport(this.stopUrl, {
        method: 'GET',
        headers: this.headers({ 'Content-Type': 'application/json' }),
        signal: AbortSignal.any([signal, timeout]),
      });
    } catch (error) {
      if (timeout.aborted && !signal.aborted) return { kind: 'ids', ids: [] };
      return { kind: 'failed', error };
    }
    const { text } = res;
    if (res.status === 204) return { kind: 'ids', ids: [] };
    if (res.status === 429) return { kind: 'throttled' };
    if (!isOk(res))
      return {
        kind: 'failed',
        error: runpodError('INTERNAL', `job stop poll answered HTTP ${res.status}`, { details: { status: res.status } }),
      };
    if (!isJson(res)) return { kind: 'ids', ids: [] };
    try {
      const payload: unknown = JSON.parse(text);
      const list = (payload as { jobsToStop?: unknown } | null)?.jobsToStop;
      return { kind: 'ids', ids: Array.isArray(list) ? list.filter((v): v is string => typeof v === 'string') : [] };
    } catch {
      this.opts.logger.warn('job stop poll returned invalid JSON; ignored');
      return { kind: 'ids', ids: [] };
    }
  }
}

/** Enough of a bad payload to debug it, without dumping inputs into the log. */
function summarise(item: unknown): unknown {
  if (typeof item !== 'object' || item === null) return item;
  return { keys: Object.keys(item), id: (item as { id?: unknown }).id };
}
