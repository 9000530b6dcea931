// Where the local API may POST a job's webhook. On RunPod, RunPod's servers call webhooks; locally this
// process does, from inside its own network: a webhook on a loopback, private or link-local address
// would let any client of the local API make the worker call internal services (SSRF). The host is
// resolved and every address checked, when the job is submitted (a refusal answers 400) and again
// before each delivery (DNS may have changed), and the delivery connects to the addresses of that
// check only (a third DNS answer cannot swap in another). The address test is the host application's
// (the runtime stays free of it): this worker passes src/media's, the same one its input URLs go through.
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { fetch as undiciFetch, type Dispatcher } from 'undici';
import type { ResolvedAddress } from '../lib/pinned-lookup';
import { runpodError } from './errors';

/** Where a webhook may be POSTed: the checked addresses to connect to; none given = anywhere (private allowed). */
export interface WebhookTarget {
  readonly addresses?: readonly ResolvedAddress[];
}

/** POSTs a webhook with undici's own fetch: `dispatcher` pins the connection (see WebhookTarget), and Node 22's
 * built-in fetch rejects undici 8's Agent as a dispatcher. */
export const webhookFetch = (
  url: string,
  init: { method: 'POST'; headers: Record<string, string>; body: string; signal: AbortSignal; dispatcher?: Dispatcher },
): Promise<Response> => undiciFetch(url, init) as unknown as Promise<Response>;

/** Resolves with the target when the local API may POST to `url`; throws a WorkerError saying why not. */
export type WebhookGuard = (url: URL) => Promise<WebhookTarget>;

export interface WebhookGuardOptions {
  /** Every address is allowed. */
  allowPrivate: boolean;
  /** What the host calls the `allowPrivate` setting, named in the refusal (e.g. an environment variable's name). */
  allowPrivateName?: string;
  /** True for an address a public URL must not reach. */
  isPrivateAddress: (ip: string) => boolean;
  /** Every address a hostname resolves to. Default: the system resolver. */
  lookup?: (hostname: string) => Promise<string[]>;
}

const systemLookup = async (hostname: string): Promise<string[]> =>
  (await dnsLookup(hostname, { all: true, verbatim: true })).map((a) => a.address);

export function createWebhookGuard(opts: WebhookGuardOptions): WebhookGuard {
  const lookup = opts.lookup ?? systemLookup;
  return async (url) => {
    if (opts.allowPrivate) return {};
    const host = url.hostname.replace(/^\[|\]$/g, '');
    let addresses: string[];
    try {
      addresses = isIP(host) ? [host] : await lookup(host);
    } catch (err) {
      throw runpodError('INVALID_INPUT', `cannot resolve host ${host} (${(err as { code?: string }).code ?? 'DNS error'})`, {
        cause: err,
        details: { field: 'webhook' },
      });
    }
    if (addresses.length === 0) throw runpodError('INVALID_INPUT', `host ${host} has no address`, { details: { field: 'webhook' } });
    const refused = addresses.find((a) => opts.isPrivateAddress(a));
    if (refused !== undefined) {
      const allow = opts.allowPrivateName ? `set ${opts.allowPrivateName}=true` : 'allow private addresses';
      throw runpodError(
        'INVALID_INPUT',
        `${url.protocol}//${url.host} resolves to ${refused}, a private, loopback or link-local address, which is refused; ` +
          `use a public URL, or ${allow} on a trusted network`,
        { details: { field: 'webhook', address: refused } },
      );
    }
    return { addresses: addresses.map((address) => ({ address, family: isIP(address) === 6 ? 6 : 4 })) };
  };
}
