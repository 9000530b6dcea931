// https:// and http:// inputs: redirects followed by hand so that every hop is checked
// against private addresses, each connection pinned to the addresses that were checked,
// timeouts on headers, idle body and total time, and a size cap enforced while streaming.
import { isIP } from 'node:net';
import { fetch as undiciFetch, type Agent } from 'undici';
import { WorkerError } from '../lib/errors';
import { redactText } from '../lib/redact';
import { pinnedAgent } from '../lib/pinned-lookup';
import { isPrivateAddress, type Lookup, type ResolvedAddress } from './address-guard';
import { describeUrl, fetchFailed, formatSeconds, invalidInput, tooLarge, type InputField } from './errors';
import type { InputRequest, InputSource } from './input-source';
import { TooLargeError, writeCapped } from './sink';

export interface HttpTimeouts {
  /** Until the response headers arrive (connect included). Default 30 s. */
  headersMs?: number;
  /** Longest pause between two body chunks. Default 30 s. */
  idleMs?: number;
  /** The whole download. Default 10 min. */
  totalMs?: number;
}

/**
 * fetch as used here. `dispatcher` (the pinned connection) must come from the same undici as
 * the fetch: Node 22's built-in fetch rejects undici 8's Agent, so the default is undici's own.
 */
export type FetchLike = (
  url: string,
  init: { redirect: 'manual'; signal: AbortSignal; headers: Record<string, string>; dispatcher?: Agent },
) => Promise<Response>;

export const defaultFetch: FetchLike = (url, init) => undiciFetch(url, init) as unknown as Promise<Response>;

export interface HttpSourceOptions {
  fetch: FetchLike;
  lookup: Lookup;
  allowPrivateUrls: boolean;
  /** Addresses allowed although private (an operator's allowlist; tests: their loopback server). */
  allowAddresses: readonly string[];
  maxBytes: number;
  maxRedirects: number;
  timeouts: HttpTimeouts;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

class Timeout extends Error {
  override readonly name = 'InputTimeout';
  constructor(what: string, ms: number) {
    super(`${what} ${formatSeconds(ms)}`);
  }
}

export class HttpSource implements InputSource {
  readonly forms = ['https://', 'http://'];
  readonly retried = true;

  constructor(private readonly opts: HttpSourceOptions) {}

  accepts(scheme: string | undefined): boolean {
    return scheme === 'http' || scheme === 'https';
  }

  fetch({ field, source, dest, signal }: InputRequest): Promise<number> {
    let url: URL;
    try {
      url = new URL(source);
    } catch {
      throw invalidInput(field, 'is not a valid URL', { reason: 'url' });
    }
    return this.download(field, url, dest, signal);
  }

  /** Resolves `url`'s host and refuses private targets; returns the addresses to pin, or undefined when unchecked. */
  private async checkTarget(field: InputField, url: URL): Promise<ResolvedAddress[] | undefined> {
    if (this.opts.allowPrivateUrls) return undefined;
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const family = isIP(host);
    let addresses: ResolvedAddress[];
    if (family !== 0) {
      addresses = [{ address: host, family: family as 4 | 6 }];
    } else {
      try {
        addresses = await this.opts.lookup(host);
      } catch (error) {
        throw fetchFailed(field, `cannot resolve host ${host} (${(error as { code?: string }).code ?? 'DNS error'})`, {
          retryable: (error as { code?: string }).code === 'EAI_AGAIN',
          cause: error,
          details: { reason: 'dns' },
        });
      }
      if (addresses.length === 0) throw fetchFailed(field, `host ${host} has no address`, { retryable: false, details: { reason: 'dns' } });
    }
    const refused = addresses.find((a) => isPrivateAddress(a.address) && !this.opts.allowAddresses.includes(a.address));
    if (refused) {
      throw invalidInput(
        field,
        `${describeUrl(url)} points to a private, loopback or link-local address, which is refused; use a public URL (or set ALLOW_PRIVATE_URLS=true on a trusted network)`,
        { reason: 'private_address' },
      );
    }
    return addresses;
  }

  /** Downloads `source` into `dest`; returns its size. */
  async download(field: InputField, source: URL, dest: string, signal: AbortSignal): Promise<number> {
    const t = { headersMs: 30_000, idleMs: 30_000, totalMs: 600_000, ...this.opts.timeouts };
    const control = new AbortController();
    const combined = AbortSignal.any([signal, control.signal]);
    const total = setTimeout(() => control.abort(new Timeout('did not finish downloading within', t.totalMs)), t.totalMs);
    // fetch refuses URLs with user:password@; send them as Basic auth, to the same origin only.
    let url = new URL(source);
    const auth =
      url.username || url.password
        ? `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`
        : undefined;
    url.username = '';
    url.password = '';
    const origin = url.origin;
    try {
      for (let hop = 0; ; hop++) {
        const pinned = await this.checkTarget(field, url);
        const dispatcher = pinned ? pinnedAgent(pinned) : undefined;
        try {
          const headers = setTimeout(() => control.abort(new Timeout('sent no response headers within', t.headersMs)), t.headersMs);
          let res: Response;
          try {
            res = await this.opts.fetch(url.toString(), {
              redirect: 'manual',
              signal: combined,
              headers: {
                accept: '*/*',
                'user-agent': 'steadydancer-worker',
                ...(auth && url.origin === origin ? { authorization: auth } : {}),
              },
              ...(dispatcher ? { dispatcher } : {}),
            });
          } finally {
            clearTimeout(headers);
          }
          if (REDIRECTS.has(res.status)) {
            await res.body?.cancel();
            url = this.nextHop(field, url, res, hop);
            continue;
          }
          if (!res.ok) {
            await res.body?.cancel();
            throw fetchFailed(field, `${describeUrl(url)} answered HTTP ${res.status}`, {
              retryable: res.status >= 500 || res.status === 429 || res.status === 408,
              details: { status: res.status },
            });
          }
          const declared = Number(res.headers.get('content-length') ?? NaN);
          if (declared > this.opts.maxBytes) {
            await res.body?.cancel();
            throw tooLarge(field, this.opts.maxBytes, declared);
          }
          if (!res.body) return writeCapped([], dest, this.opts.maxBytes);
          return await this.readBody(res.body, dest, control, t.idleMs);
        } finally {
          await dispatcher?.close().catch(() => {});
        }
      }
    } catch (error) {
      throw this.convert(field, url, error, signal, control.signal);
    } finally {
      clearTimeout(total);
    }
  }

  private async readBody(body: ReadableStream<Uint8Array>, dest: string, control: AbortController, idleMs: number): Promise<number> {
    let idle: NodeJS.Timeout | undefined;
    const arm = (): void => {
      clearTimeout(idle);
      idle = setTimeout(() => control.abort(new Timeout('stalled: no data for', idleMs)), idleMs);
    };
    arm();
    try {
      return await writeCapped(body, dest, this.opts.maxBytes, arm);
    } finally {
      clearTimeout(idle);
    }
  }

  private nextHop(field: InputField, from: URL, res: Response, hop: number): URL {
    const location = res.headers.get('location');
    if (!location)
      throw fetchFailed(field, `${describeUrl(from)} redirected without a Location`, { retryable: false, details: { status: res.status } });
    if (hop + 1 > this.opts.maxRedirects) {
      throw fetchFailed(field, `more than ${this.opts.maxRedirects} redirects starting at ${describeUrl(from)}`, {
        retryable: false,
        details: { reason: 'too_many_redirects' },
      });
    }
    const next = new URL(location, from);
    if (next.protocol !== 'https:' && next.protocol !== 'http:') {
      throw invalidInput(field, `${describeUrl(from)} redirected to an unsupported ${next.protocol} URL`, { reason: 'redirect_scheme' });
    }
    return next;
  }

  private convert(field: InputField, url: URL, error: unknown, jobSignal: AbortSignal, own: AbortSignal): unknown {
    if (jobSignal.aborted) return jobSignal.reason;
    if (error instanceof WorkerError) return error;
    if (error instanceof TooLargeError) return tooLarge(field, error.maxBytes);
    if (own.aborted && own.reason instanceof Timeout) {
      return fetchFailed(field, `${describeUrl(url)} ${own.reason.message}`, { retryable: true, details: { reason: 'timeout' } });
    }
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const reason = redactText(cause?.code ?? cause?.message ?? (error as Error).message ?? 'network error');
    return fetchFailed(field, `could not download ${describeUrl(url)} (${reason})`, {
      retryable: true,
      cause: error,
      details: { reason },
    });
  }
}
