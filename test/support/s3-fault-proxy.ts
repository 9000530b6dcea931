// A loopback HTTP proxy in front of the real S3 test server that injects faults: each request is
// passed through unchanged (SigV4 signs the Host header, which is kept, so signatures hold) or
// answered by the fault the test's rule picks — an S3-style 5xx (the request body is read first,
// as a load balancer would), or a hang (connection kept open, nothing answered). Used by the upload
// fault tests and the fault benchmark.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface ProxiedRequest {
  method: string;
  /** Path and query, e.g. `/bucket/key?partNumber=2&uploadId=…`. */
  url: string;
  /** 1-based, in arrival order. */
  n: number;
}

export type Fault = 'pass' | 'hang' | { status: number };
export type FaultRule = (req: ProxiedRequest) => Fault;

export interface SeenRequest extends ProxiedRequest {
  fault: Fault;
  /** Status sent back (the upstream's when passed); undefined while in flight or when hung. */
  status?: number;
}

export interface FaultProxy {
  endpoint: string;
  /** Every request so far, in arrival order. */
  readonly seen: SeenRequest[];
  /** Requests whose answer has not been sent (or that hang). */
  inFlight(): number;
  /** TCP connections accepted so far. */
  connections(): number;
  setRule(rule: FaultRule): void;
  close(): Promise<void>;
}

const S3_ERROR: Record<number, string> = { 500: 'InternalError', 503: 'SlowDown' };

export async function startFaultProxy(upstream: string, rule: FaultRule = () => 'pass'): Promise<FaultProxy> {
  const target = new URL(upstream);
  const seen: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  let current = rule;
  let open = 0;
  let connections = 0;
  const agent = new http.Agent({ keepAlive: true });

  const server = http.createServer((req, res) => {
    const entry: SeenRequest = { method: req.method ?? 'GET', url: req.url ?? '/', n: seen.length + 1, fault: 'pass' };
    entry.fault = current(entry);
    seen.push(entry);
    open++;
    let settled = false;
    const settle = (status: number | undefined): void => {
      if (settled) return;
      settled = true;
      open--;
      entry.status = status;
    };
    res.on('close', () => settle(entry.status));
    const fault = entry.fault;
    if (fault === 'hang') {
      req.resume(); // take the body, answer nothing
      return;
    }
    if (fault !== 'pass') {
      req.resume();
      req.on('end', () => {
        const code = S3_ERROR[fault.status] ?? 'InternalError';
        res.writeHead(fault.status, { 'content-type': 'application/xml', connection: 'close' });
        res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected fault</Message></Error>`);
        settle(fault.status);
      });
      return;
    }
    const out = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
        up.on('end', () => settle(up.statusCode));
      },
    );
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  server.on('connection', (socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    seen,
    inFlight: () => open,
    connections: () => connections,
    setRule: (r) => {
      current = r;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      agent.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
