// Large-upload bench: our uploader (multipart, as it sends a file this large; and forced to one
// PutObject through its pooled file body) vs one plain PutObject from the same SDK (an fs stream as
// body) vs s5cmd, the same file to the same real S3 server (versitygw on loopback). Each arm runs in its own
// process (so its peak RSS is its own), the arms alternate, several runs each; medians are printed
// and written with every sample to bench/results/storage.json.
// Run: npm run bench:storage   (BENCH_SIZE_MB=1024 BENCH_RUNS=3; BENCH_PART_MB / BENCH_QUEUE to try other settings)
// Goals (issue 13): ours ≥ 0.9 × single PutObject and ≥ s5cmd throughput, ≤ 100 MiB peak RSS.
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { silentLogger } from '../src/lib/logger';
import { createS3Client, type BucketCredentials } from '../src/s3';
import { DEFAULT_UPLOAD_POLICY, uploadFile } from '../src/storage/upload';
import { startS3Server } from '../test/setup/s3-server';
import { ensureS5cmd, S5CMD_VERSION } from './s5cmd';

type Arm = 'ours' | 'ours-put' | 'single' | 's5cmd';
const ARMS: Arm[] = ['ours', 'ours-put', 'single', 's5cmd'];
const MiB = 1024 * 1024;

interface Sample {
  arm: Arm;
  run: number;
  seconds: number;
  mibPerS: number;
  peakRssMiB: number;
  /** Ours, multipart: how long the server took to answer CompleteMultipartUpload (it assembles the parts). */
  completeS?: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

function policy() {
  return {
    ...DEFAULT_UPLOAD_POLICY,
    ...(process.env.BENCH_PART_MB ? { partSize: Number(process.env.BENCH_PART_MB) * MiB } : {}),
    ...(process.env.BENCH_QUEUE ? { queueSize: Number(process.env.BENCH_QUEUE) } : {}),
  };
}

/** Child mode: one upload by our uploader or by one PutObject; prints its seconds and maxRSS as JSON. */
async function child(arm: Exclude<Arm, 's5cmd'>, file: string, key: string, credsJson: string): Promise<void> {
  const creds = JSON.parse(credsJson) as BucketCredentials;
  const client = createS3Client(creds);
  let completeMs: number | undefined;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const t = performance.now();
      try {
        return await next(args);
      } finally {
        if (context.commandName === 'CompleteMultipartUploadCommand') completeMs = performance.now() - t;
      }
    },
    { step: 'initialize', name: 'benchCompleteTiming' },
  );
  const bytes = (await import('node:fs')).statSync(file).size;
  const started = performance.now();
  if (arm === 'ours' || arm === 'ours-put') {
    await uploadFile(
      client,
      { path: file, bucket: creds.bucket, key, contentType: 'video/mp4', contentDisposition: 'inline; filename="video.mp4"' },
      { logger: silentLogger, policy: arm === 'ours' ? policy() : { ...policy(), multipartThreshold: Infinity } },
    );
  } else {
    await client.send(
      new PutObjectCommand({
        Bucket: creds.bucket,
        Key: key,
        Body: createReadStream(file),
        ContentLength: bytes,
        ContentType: 'video/mp4',
      }),
    );
  }
  const seconds = (performance.now() - started) / 1000;
  client.destroy();
  process.stdout.write(`${JSON.stringify({ seconds, maxRss: process.resourceUsage().maxRSS * 1024, completeMs })}\n`);
}

/** Peak RSS of a child from /proc (VmHWM only grows: the last reading before exit is the peak). */
function watchPeak(pid: number): { stop(): number } {
  let peak = 0;
  const read = async (): Promise<void> => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
      if (m) peak = Math.max(peak, Number(m[1]) * 1024);
    } catch {
      // gone already
    }
  };
  const timer = setInterval(() => void read(), 10);
  return { stop: () => (clearInterval(timer), peak) };
}

function runProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ out: string; seconds: number; peak: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const p = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const peak = watchPeak(p.pid as number);
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('exit', (code) => {
      const seconds = (performance.now() - started) / 1000;
      const top = peak.stop();
      if (code === 0) resolve({ out, seconds, peak: top });
      else reject(new Error(`${cmd} exited ${code}: ${err.slice(-2000)}`));
    });
  });
}

async function makeFile(file: string, bytes: number): Promise<void> {
  const fh = await open(file, 'w');
  const block = Buffer.alloc(8 * MiB);
  for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((i * 2654435761) >>> 0, i); // incompressible enough, cheap
  for (let written = 0; written < bytes; written += block.length) await fh.write(block, 0, Math.min(block.length, bytes - written));
  await fh.close();
}

async function main(): Promise<void> {
  const sizeMiB = Number(process.env.BENCH_SIZE_MB ?? 1024);
  const runs = Number(process.env.BENCH_RUNS ?? 3);
  const s5cmd = await ensureS5cmd();
  const server = await startS3Server();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-storage-'));
  try {
    const bytes = sizeMiB * MiB;
    const file = path.join(dir, 'video.mp4');
    await makeFile(file, bytes);
    const creds: BucketCredentials = {
      endpointUrl: server.endpoint,
      accessKeyId: server.accessKeyId,
      secretAccessKey: server.secretAccessKey,
      bucket: server.bucket,
      region: server.region,
    };
    const check = createS3Client(creds);
    const samples: Sample[] = [];
    for (let run = 1; run <= runs; run++) {
      // Rotate the order each run, so no arm always goes first (cold page cache, fresh server).
      for (const arm of [...ARMS.slice(run % ARMS.length), ...ARMS.slice(0, run % ARMS.length)]) {
        const key = `bench/${arm}.mp4`;
        let seconds: number;
        let peak: number;
        let completeS: number | undefined;
        if (arm === 's5cmd') {
          const r = await runProcess(s5cmd, ['--endpoint-url', server.endpoint, 'cp', file, `s3://${server.bucket}/${key}`], {
            ...process.env,
            AWS_ACCESS_KEY_ID: server.accessKeyId,
            AWS_SECRET_ACCESS_KEY: server.secretAccessKey,
            AWS_REGION: server.region,
          });
          ({ seconds, peak } = r);
        } else {
          const r = await runProcess(
            process.execPath,
            [process.argv[1] as string, '--arm', arm, file, key, JSON.stringify(creds)],
            process.env,
          );
          const reported = JSON.parse(r.out.trim().split('\n').pop() as string) as { seconds: number; maxRss: number; completeMs?: number };
          seconds = reported.seconds;
          peak = Math.max(r.peak, reported.maxRss);
          if (reported.completeMs !== undefined) completeS = reported.completeMs / 1000;
        }
        const head = await check.send(new HeadObjectCommand({ Bucket: server.bucket, Key: key }));
        if (head.ContentLength !== bytes) throw new Error(`${arm}: stored ${head.ContentLength} bytes, expected ${bytes}`);
        const sample: Sample = {
          arm,
          run,
          seconds,
          mibPerS: sizeMiB / seconds,
          peakRssMiB: peak / MiB,
          ...(completeS !== undefined ? { completeS } : {}),
        };
        samples.push(sample);
        const complete = completeS !== undefined ? `  (server's Complete ${completeS.toFixed(2)} s)` : '';
        console.log(
          `run ${run} ${arm.padEnd(8)} ${seconds.toFixed(2)} s  ${sample.mibPerS.toFixed(0)} MiB/s  peak RSS ${sample.peakRssMiB.toFixed(0)} MiB${complete}`,
        );
      }
    }
    check.destroy();

    const summary = Object.fromEntries(
      ARMS.map((arm) => {
        const mine = samples.filter((s) => s.arm === arm);
        return [arm, { mibPerS: median(mine.map((s) => s.mibPerS)), peakRssMiB: median(mine.map((s) => s.peakRssMiB)) }];
      }),
    ) as Record<Arm, { mibPerS: number; peakRssMiB: number }>;
    const ours = samples.filter((s) => s.arm === 'ours');
    const completeS = median(ours.map((s) => s.completeS ?? 0));
    // Ours without the server's part assembly: what the client side of multipart achieves.
    const partsMibPerS = median(ours.map((s) => sizeMiB / (s.seconds - (s.completeS ?? 0))));
    const p = policy();
    const result = {
      bench: 'storage',
      date: new Date().toISOString(),
      machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, loadavg: os.loadavg() },
      node: process.version,
      server: 'versitygw (posix) on loopback',
      s5cmd: `${S5CMD_VERSION} (defaults: 5 workers, 50 MB parts)`,
      fileMiB: sizeMiB,
      runs,
      ours: { partMiB: p.partSize / MiB, queueSize: p.queueSize, multipartThresholdMiB: p.multipartThreshold / MiB },
      medians: summary,
      ratios: {
        oursVsSingle: summary.ours.mibPerS / summary.single.mibPerS,
        oursVsS5cmd: summary.ours.mibPerS / summary.s5cmd.mibPerS,
        oursPutVsSingle: summary['ours-put'].mibPerS / summary.single.mibPerS,
        oursPartsPhaseVsSingle: partsMibPerS / summary.single.mibPerS,
      },
      oursMultipart: { serverCompleteS: completeS, partsPhaseMibPerS: partsMibPerS },
      goals: { oursVsSingle: 0.9, oursVsS5cmd: 1, peakRssMiB: 100 },
      samples,
    };
    console.log(
      `\nfile ${sizeMiB} MiB, ${runs} runs per arm (alternating), medians; ours: ${p.partSize / MiB} MiB parts × ${p.queueSize} in flight`,
    );
    for (const arm of ARMS)
      console.log(
        `${arm.padEnd(8)} ${summary[arm].mibPerS.toFixed(0).padStart(5)} MiB/s   peak RSS ${summary[arm].peakRssMiB.toFixed(0)} MiB`,
      );
    console.log(
      `ours multipart: the server's CompleteMultipartUpload took ${completeS.toFixed(2)} s (versitygw copies the parts into the object); parts phase ${partsMibPerS.toFixed(0)} MiB/s`,
    );
    console.log(`ours / single PutObject: ${result.ratios.oursVsSingle.toFixed(2)} (goal ≥ 0.9)`);
    console.log(`ours / s5cmd:            ${result.ratios.oursVsS5cmd.toFixed(2)} (goal ≥ 1)`);
    console.log(`ours peak RSS:           ${summary.ours.peakRssMiB.toFixed(0)} MiB (goal ≤ 100)`);
    console.log(
      `ours, one PutObject / single PutObject: ${result.ratios.oursPutVsSingle.toFixed(2)}; ours parts phase / single: ${result.ratios.oursPartsPhaseVsSingle.toFixed(2)}`,
    );
    const out = path.resolve('bench/results/storage.json');
    await mkdir(path.dirname(out), { recursive: true });
    await writeFile(out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`written to ${path.relative(process.cwd(), out)}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
    await server.stop();
  }
}

const argv = process.argv.slice(2);
const entry =
  argv[0] === '--arm' ? child(argv[1] as Exclude<Arm, 's5cmd'>, argv[2] as string, argv[3] as string, argv[4] as string) : main();
entry.catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
