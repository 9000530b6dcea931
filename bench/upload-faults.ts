// Fault bench: how long an S3 outage an upload survives, and how a hung S3 is cut, with the
// worker's default settings (retry budget, timeouts), against the real S3 server (versitygw)
// behind a fault-injecting proxy. Prints a table and writes bench/results/upload-faults.json.
// Run: npm run bench:upload-faults   (BENCH_OUTAGES_S=30,60,110,130 by default: ~8 minutes)
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { isWorkerError } from '../src/lib/errors';
import { silentLogger } from '../src/lib/logger';
import { createS3Client, DEFAULT_S3_TIMEOUTS, type BucketCredentials } from '../src/s3';
import { DEFAULT_UPLOAD_POLICY, uploadFile } from '../src/storage/upload';
import { startS3Server } from '../test/setup/s3-server';
import { startFaultProxy, type FaultProxy } from '../test/support/s3-fault-proxy';

const MiB = 1024 * 1024;

interface Outcome {
  scenario: string;
  faultS: number | null;
  delivered: boolean;
  intact: boolean | null;
  code: string | null;
  seconds: number;
  requests: number;
  failedRequests: number;
  /** Multipart: part uploads answered 200 for a part number already stored (0 = true resume). */
  partsResent?: number;
}

async function makeFile(file: string, bytes: number): Promise<string> {
  const fh = await open(file, 'w');
  const hash = createHash('sha256');
  const block = Buffer.alloc(MiB);
  for (let written = 0; written < bytes; written += block.length) {
    for (let i = 0; i < block.length; i += 4) block.writeUInt32LE(((written + i) * 2654435761) >>> 0, i);
    const n = Math.min(block.length, bytes - written);
    hash.update(block.subarray(0, n));
    await fh.write(block, 0, n);
  }
  await fh.close();
  return hash.digest('hex');
}

const isPart = (url: string): boolean => /[?&]partNumber=/.test(url);
const partNumber = (url: string): number => Number(/[?&]partNumber=(\d+)/.exec(url)?.[1]);

async function main(): Promise<void> {
  const outages = (process.env.BENCH_OUTAGES_S ?? '30,60,110,130').split(',').map(Number);
  const server = await startS3Server();
  const proxy: FaultProxy = await startFaultProxy(server.endpoint);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-faults-'));
  const results: Outcome[] = [];
  const direct = createS3Client({
    endpointUrl: server.endpoint,
    accessKeyId: server.accessKeyId,
    secretAccessKey: server.secretAccessKey,
    bucket: server.bucket,
    region: server.region,
  });
  const report = (o: Outcome): void => {
    results.push(o);
    const fault = o.faultS === null ? '' : `${o.faultS} s`;
    const what = o.delivered ? `delivered${o.intact ? ' intact' : ' CORRUPT'}` : `failed ${o.code}`;
    console.log(
      `${o.scenario.padEnd(34)} ${fault.padStart(6)}  ${what.padEnd(18)} after ${o.seconds.toFixed(1).padStart(6)} s, ${o.requests} requests (${o.failedRequests} failed)${o.partsResent !== undefined ? `, parts re-sent ${o.partsResent}` : ''}`,
    );
  };
  const storedSha = async (key: string): Promise<string> => {
    const res = await direct.send(new GetObjectCommand({ Bucket: server.bucket, Key: key }));
    return createHash('sha256')
      .update(Buffer.from(await (res.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()))
      .digest('hex');
  };

  async function attempt(
    scenario: string,
    faultS: number | null,
    endpoint: string,
    file: { path: string; sha: string },
    key: string,
  ): Promise<Outcome> {
    proxy.seen.length = 0;
    const creds: BucketCredentials = {
      endpointUrl: endpoint,
      accessKeyId: server.accessKeyId,
      secretAccessKey: server.secretAccessKey,
      bucket: server.bucket,
      region: server.region,
    };
    const client = createS3Client(creds);
    const started = performance.now();
    let code: string | null = null;
    try {
      await uploadFile(
        client,
        { path: file.path, bucket: server.bucket, key, contentType: 'video/mp4', contentDisposition: 'inline' },
        { logger: silentLogger },
      );
    } catch (error) {
      code = isWorkerError(error) ? error.code : String(error);
    } finally {
      client.destroy();
    }
    const seconds = (performance.now() - started) / 1000;
    const delivered = code === null;
    return {
      scenario,
      faultS,
      delivered,
      intact: delivered ? (await storedSha(key)) === file.sha : null,
      code,
      seconds,
      requests: proxy.seen.length,
      failedRequests: proxy.seen.filter((r) => r.fault !== 'pass').length,
    };
  }

  try {
    const small = path.join(dir, 'small.mp4');
    const smallFile = { path: small, sha: await makeFile(small, 20 * MiB) };
    const large = path.join(dir, 'large.mp4');
    const largeFile = { path: large, sha: await makeFile(large, 400 * MiB) };
    console.log(
      `defaults: retry budget ${DEFAULT_UPLOAD_POLICY.retryBudgetMs / 1000} s without progress, idle timeout ${DEFAULT_S3_TIMEOUTS.idleMs / 1000} s, ` +
        `connect timeout ${DEFAULT_S3_TIMEOUTS.connectMs / 1000} s, ${DEFAULT_UPLOAD_POLICY.maxTimeoutsInARow} unanswered attempts in a row end it\n`,
    );

    // 1. S3 answers 503 to everything for N seconds, starting with the upload (20 MiB: one PutObject).
    for (const s of outages) {
      const until = Date.now() + s * 1000;
      proxy.setRule(() => (Date.now() < until ? { status: 503 } : 'pass'));
      report(await attempt('PutObject, 503 from the start', s, proxy.endpoint, smallFile, `faults/outage-${s}.mp4`));
    }

    // 2. Multipart (400 MiB, 25 parts): after 5 parts are stored, 500 for 60 s, then S3 is back.
    {
      let stored = 0;
      let outageEnds: number | undefined;
      proxy.setRule(({ url }) => {
        if (outageEnds === undefined && isPart(url) && ++stored > 5) outageEnds = Date.now() + 60_000;
        return outageEnds !== undefined && Date.now() < outageEnds ? { status: 500 } : 'pass';
      });
      const o = await attempt('multipart, 500 mid-upload', 60, proxy.endpoint, largeFile, 'faults/resume.mp4');
      const passedParts = proxy.seen.filter((r) => isPart(r.url) && r.status === 200).map((r) => partNumber(r.url));
      o.partsResent = passedParts.length - new Set(passedParts).size;
      report(o);
    }

    // 3. A hung S3: the proxy reads each request and never answers.
    proxy.setRule(() => 'hang');
    report(await attempt('hung S3 (request read, no answer)', null, proxy.endpoint, smallFile, 'faults/hung.mp4'));

    // 4. A black hole: connections accepted, nothing read, nothing answered.
    const held: net.Socket[] = [];
    const hole = net.createServer((socket) => {
      socket.pause();
      held.push(socket);
    });
    await new Promise<void>((resolve) => hole.listen(0, '127.0.0.1', resolve));
    const holeEndpoint = `http://127.0.0.1:${(hole.address() as net.AddressInfo).port}`;
    report(await attempt('black hole (nothing read)', null, holeEndpoint, smallFile, 'faults/hole.mp4'));
    for (const s of held) s.destroy();
    hole.close();

    const survived = results.filter((r) => r.scenario.startsWith('PutObject') && r.delivered).map((r) => r.faultS as number);
    const summary = {
      longestOutageSurvivedS: survived.length ? Math.max(...survived) : 0,
      hungS3CutAfterS: results.find((r) => r.scenario.startsWith('hung'))?.seconds,
      blackHoleCutAfterS: results.find((r) => r.scenario.startsWith('black hole'))?.seconds,
    };
    console.log(
      `\nlongest outage survived: ${summary.longestOutageSurvivedS} s; a hung S3 is cut after ${summary.hungS3CutAfterS?.toFixed(1)} s (black hole: ${summary.blackHoleCutAfterS?.toFixed(1)} s)`,
    );
    const out = path.resolve('bench/results/upload-faults.json');
    await mkdir(path.dirname(out), { recursive: true });
    await writeFile(
      out,
      `${JSON.stringify(
        {
          bench: 'upload-faults',
          date: new Date().toISOString(),
          node: process.version,
          settings: { ...DEFAULT_UPLOAD_POLICY, ...DEFAULT_S3_TIMEOUTS },
          summary,
          results,
        },
        null,
        2,
      )}\n`,
    );
    console.log(`written to ${path.relative(process.cwd(), out)}`);
  } finally {
    direct.destroy();
    await proxy.close();
    await rm(dir, { recursive: true, force: true });
    await server.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
