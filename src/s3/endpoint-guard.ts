// A job's own bucket endpoint (`s3Config.endpointUrl`) is a URL chosen by whoever sends the job:
// it gets the same address guard as input URLs (SSRF), and optionally an operator's allow-list.
// The check runs twice: once when the job arrives (fail before any GPU work), and again inside
// every socket's DNS lookup, so the address a connection goes to is the one that was checked
// (no DNS-rebinding window between the check and the connect). The worker's own BUCKET_* endpoint
// is the operator's and is not guarded.
import { isIP, type LookupFunction } from 'node:net';
import { WorkerError } from '../lib/errors';
import { answerLookup, type ResolvedAddress } from '../lib/pinned-lookup';
import { isPrivateAddress, type Lookup } from '../media/address-guard';
import { bucketFromS3Config, parseS3Config, type BucketCredentials } from './credentials';
import { s3Error } from './errors';

/**
 * One ALLOWED_S3_ENDPOINTS entry: a URL prefix (`https://acc.r2.cloudflarestorage.com`, or with a
 * bucket: `https://s3.example.com/videos`) or a host (`minio.lan:9000`, `*.r2.cloudflarestorage.com`).
 */
type AllowedEndpoint =
  { kind: 'url'; origin: string; path: string } | { kind: 'host'; host: string; port: string | undefined; subdomains: boolean };

export interface EndpointPolicy {
  /** ALLOW_PRIVATE_URLS: private, loopback and link-local addresses may be reached. */
  allowPrivate: boolean;
  /** ALLOWED_S3_ENDPOINTS entries; when non-empty, a job's endpoint must match one. */
  allowedEndpoints: readonly string[];
  /** DNS seam; default the system resolver. */
  lookup: Lookup;
}

const FIELD = 's3Config.endpointUrl';

/** Parses one allow-list entry; undefined when it is neither a URL prefix nor a host pattern. */
export function parseAllowedEndpoint(entry: string): AllowedEndpoint | undefined {
  const e = entry.trim();
  if (e.includes('://')) {
    let url: URL;
    try {
      url = new URL(e);
    } catch {
      return undefined;
    }
    if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.username || url.password || url.search || url.hash) return undefined;
    return { kind: 'url', origin: url.origin, path: url.pathname.replace(/\/+$/, '') };
  }
  const m = /^(\*\.)?([a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(?::(\d{1,5}))?$/i.exec(e);
  if (!m) return undefined;
  return { kind: 'host', host: (m[2] as string).toLowerCase(), port: m[3], subdomains: m[1] !== undefined };
}

function defaultPort(url: URL): string {
  return url.port || (url.protocol === 'https:' ? '443' : '80');
}

function matches(entry: AllowedEndpoint, url: URL): boolean {
  if (entry.kind === 'url') {
    if (url.origin !== entry.origin) return false;
    const path = url.pathname.replace(/\/+$/, '');
    return path === entry.path || path.startsWith(`${entry.path}/`);
  }
  const host = url.hostname.toLowerCase();
  const hostOk = entry.subdomains ? host.endsWith(`.${entry.host}`) : host === entry.host;
  return hostOk && (entry.port === undefined || entry.port === defaultPort(url));
}

/** A refusal that says nothing of what is (or is not) at the address: no port-scan or DNS oracle. */
function refused(): WorkerError {
  return s3Error(
    'INVALID_INPUT',
    `${FIELD}: this endpoint cannot be used; it must be a public S3 endpoint whose host resolves to public addresses only`,
    { details: { fields: [FIELD], reason: 'endpoint_refused' } },
  );
}

class RefusedAddressError extends Error {
  override readonly name = 'RefusedAddressError';
  readonly code = 'EADDRNOTALLOWED';
  constructor() {
    super('the bucket endpoint resolved to an address that is refused');
  }
}

function bareHost(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '');
}

export class EndpointGuard {
  private readonly allowed: AllowedEndpoint[];

  constructor(private readonly policy: EndpointPolicy) {
    this.allowed = policy.allowedEndpoints.map((entry) => {
      const parsed = parseAllowedEndpoint(entry);
      if (!parsed)
        throw s3Error('CONFIG_INVALID', `ALLOWED_S3_ENDPOINTS: "${entry}" is neither an http(s):// URL prefix nor a host`, {
          details: { variables: ['ALLOWED_S3_ENDPOINTS'] },
        });
      return parsed;
    });
  }

  /**
   * A job's raw `s3Config` → credentials whose client may only connect to checked addresses.
   * Throws INVALID_INPUT naming the field: bad shape, not on the allow-list, or a private target.
   */
  async jobBucket(raw: unknown, region: string): Promise<BucketCredentials> {
    const creds = bucketFromS3Config(parseS3Config(raw), region);
    const url = new URL(creds.endpointUrl as string);
    // Matched against where objects go (path style: endpoint/bucket), so a prefix may pin a bucket too.
    const objectsBase = new URL(`${url.origin}/${encodeURIComponent(creds.bucket)}`);
    if (this.allowed.length > 0 && !this.allowed.some((entry) => matches(entry, objectsBase))) {
      throw s3Error('INVALID_INPUT', `${FIELD}: this worker only accepts the bucket endpoints its operator listed (ALLOWED_S3_ENDPOINTS)`, {
        details: { fields: [FIELD], reason: 'endpoint_not_allowed' },
      });
    }
    if (this.policy.allowPrivate) return creds;
    const host = bareHost(url);
    if (isIP(host) !== 0) {
      // Sockets skip the lookup for IP literals, so this check is the only one: it must hold.
      if (isPrivateAddress(host)) throw refused();
      return creds;
    }
    let addresses: ResolvedAddress[];
    try {
      addresses = await this.policy.lookup(host);
    } catch (error) {
      // A passing DNS hiccup is not the job's fault: the connect-time lookup checks again.
      if ((error as { code?: string }).code === 'EAI_AGAIN') return { ...creds, lookup: this.socketLookup() };
      throw refused();
    }
    if (addresses.length === 0 || addresses.some((a) => isPrivateAddress(a.address))) throw refused();
    return { ...creds, lookup: this.socketLookup() };
  }

  /** net.connect's `lookup`: resolves, refuses any private answer, and hands the checked addresses to the socket. */
  socketLookup(): LookupFunction {
    return (hostname, options, callback) => {
      this.policy.lookup(hostname).then(
        (all) => {
          const wanted = options.family === 4 || options.family === 6 ? all.filter((a) => a.family === options.family) : all;
          if (all.length === 0 || all.some((a) => isPrivateAddress(a.address)) || wanted.length === 0) {
            callback(new RefusedAddressError(), '', 0);
          } else {
            answerLookup(wanted, options.all, callback);
          }
        },
        (error: NodeJS.ErrnoException) => callback(error, '', 0),
      );
    };
  }
}
