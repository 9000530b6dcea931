// Connections pinned to addresses already checked: the socket asks this instead of DNS, so a second DNS
// answer (rebinding) cannot send it elsewhere. Input downloads, S3 endpoints and local-API webhooks use it.
import type { LookupAddress } from 'node:dns';
import { Agent } from 'undici';

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Answers a socket's DNS lookup (net.connect's `lookup`) with checked addresses: all of them when asked for all, else the first. */
export function answerLookup(
  addresses: readonly ResolvedAddress[],
  all: boolean | undefined,
  cb: (err: null, address: string | LookupAddress[], family?: number) => void,
): void {
  if (all) {
    cb(
      null,
      addresses.map((a) => ({ address: a.address, family: a.family })),
    );
  } else {
    const first = addresses[0] as ResolvedAddress;
    cb(null, first.address, first.family);
  }
}

/**
 * An undici Agent whose sockets connect only to `addresses` (TLS still checks the URL's host name). Pass it
 * as `dispatcher` to undici's own fetch: Node 22's built-in fetch rejects undici 8's Agent.
 */
export function pinnedAgent(addresses: readonly ResolvedAddress[]): Agent {
  return new Agent({ connect: { lookup: (_hostname, options, cb) => answerLookup(addresses, options.all, cb) } });
}
