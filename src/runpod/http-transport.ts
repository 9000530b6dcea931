// How the worker talks to RunPod's job API: node:http(s) with keep-alive, not the global fetch.
// The first fetch() of a process loads Node's bundled undici, several times the CPU of node:http;
// the job take is the first request a worker makes, so it goes out without that cost (start-up
// goal: first take < 150 ms after the process starts, see bench/runtime.ts).
import http from 'node:http';
import https from 'node:https';

export interface HttpRequest {
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
  signal: AbortSignal;
  /** Called once the request has been handed to the network (the long poll is then RunPod's to answer). */
  onSent?: () => void;
}

export interface HttpAnswer {
  status: number;
  /** The Content-Type header, '' when absent. */
  contentType: string;
  text: string;
}

/** One request, its whole answer read as UTF-8; rejects on network errors and when `signal` aborts. */
export type HttpTransport = (url: string, request: HttpRequest) => Promise<HttpAnswer>;

export function createHttpTransport(): HttpTransport {
  // Connections are reused across takes and posts, as fetch would; idle ones never hold the process.
  const agents = { 'http:': new http.Agent({ keepAlive: true }), 'https:': new https.Agent({ keepAlive: true }) };
  return (url, request) =>
    new Promise<HttpAnswer>((resolve, reject) => {
      const target = new URL(url);
      const client = target.protocol === 'https:' ? https : target.protocol === 'http:' ? http : undefined;
      if (!client) return reject(new TypeError(`unsupported protocol ${target.protocol} in ${target.origin}`));
      const headers = {
        ...request.headers,
        ...(request.body !== undefined ? { 'Content-Length': String(Buffer.byteLength(request.body)) } : {}),
      };
      const req = client.request(
        target,
        { method: request.method, headers, agent: agents[target.protocol as 'http:'], signal: request.signal },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('close', () => {
            if (!res.complete) return reject(new Error(`the answer from ${target.origin} was cut off`));
            resolve({
              status: res.statusCode ?? 0,
              contentType: res.headers['content-type'] ?? '',
              text: Buffer.concat(chunks).toString('utf8'),
            });
          });
        },
      );
      req.on('error', reject);
      if (request.onSent) req.once('finish', request.onSent);
      req.end(request.body);
    });
}

/** The same over a fetch function (tests and embedders that intercept fetch). */
export function fetchTransport(fetchFn: typeof fetch): HttpTransport {
  return async (url, request) => {
    const pending = fetchFn(url, {
      method: request.method,
      headers: request.headers,
      signal: request.signal,
      ...(request.body !== undefined ? { body: request.body } : {}),
    });
    request.onSent?.();
    const res = await pending;
    return { status: res.status, contentType: res.headers.get('content-type') ?? '', text: await res.text() };
  };
}
