// Start-up, idle memory and per-job runtime overhead of the worker as the image runs it: the real
// bundle (dist/handler.cjs → dist/handler-main.cjs, built by scripts/build.mjs, its compile cache warmed
// as the Dockerfile does), the real app wiring (config, ComfyUI supervisor, input fetcher, video
// store, job pipeline), against the loopback fake of RunPod's job API, with the heartbeat on and
// ComfyUI at COMFYUI_URL (a loopback stand-in, so no Python is needed).
// Run: npm run bench:runtime   (BENCH_RUNS=11 rounds, BENCH_JOBS=300)
//
// Arms, alternating within each round:
//   image        `node dist/handler.cjs`, compile cache warmed (the image's CMD). Goals: < 150 ms to the
//                first take, ≤ 100 MiB idle RSS (worker + children).
//   source-maps  the same with NODE_OPTIONS=--enable-source-maps (opt-in, for TypeScript stack traces)
//   no-cache     NODE_DISABLE_COMPILE_CACHE=1 (a local first run, or an image built without the warm-up)
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FakeComfyUI } from '../test/fakes/comfyui';
import { startFakeJobApi, type FakeJobApi } from '../test/fakes/runpod-job-api';
import { allRequiredNodeClasses } from '../src/workflow';

const [launcher, resultsFile] = process.argv.slice(2);
if (!launcher || !resultsFile) throw new Error('usage: runtime.mjs <dist/handler.cjs> <results.json>');
const ROUNDS = Number(process.env.BENCH_RUNS ?? 11);
const JOBS = Number(process.env.BENCH_JOBS ?? 300);
/** How long a worker sits idle (heartbeat running) before its memory is read. */
const IDLE_MS = 3000;

interface Arm {
  name: string;
  env: Record<string, string>;
}
const ARMS: Arm[] = [
  { name: 'image', env: {} },
  { name: 'source-maps', env: { NODE_OPTIONS: '--enable-source-maps' } },
  { name: 'no-cache', env: { NODE_DISABLE_COMPILE_CACHE: '1' } },
];

const scratch = mkdtempSync(path.join(os.tmpdir(), 'bench-runtime-'));
const comfyDirs = { input: path.join(scratch, 'in'), output: path.join(scratch, 'out'), temp: path.join(scratch, 'tmp') };
const comfy = await FakeComfyUI.start({ nodeClasses: allRequiredNodeClasses(), dirs: comfyDirs });

/** The image's environment (the Dockerfile ENV) plus what RunPod sets, a bucket, and COMFYUI_URL. */
function workerEnv(api: FakeJobApi, arm: Arm): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    NODE_ENV: 'production',
    RUNPOD_WEBHOOK_GET_JOB: api.templates.jobTakeUrl,
    RUNPOD_WEBHOOK_POST_OUTPUT: api.templates.jobDoneUrl,
    RUNPOD_WEBHOOK_POST_STREAM: api.templates.jobStreamUrl,
    RUNPOD_WEBHOOK_PING: api.templates.pingUrl,
    RUNPOD_AI_API_KEY: 'bench-key',
    RUNPOD_POD_ID: 'bench-pod',
    RUNPOD_ENDPOINT_ID: 'bench',
    COMFYUI_URL: comfy.url,
    BUCKET_ENDPOINT_URL: 'http://127.0.0.1:9',
    BUCKET_ACCESS_KEY_ID: 'bench',
    BUCKET_SECRET_ACCESS_KEY: 'bench-secret',
    BUCKET_NAME: 'bench',
    WORK_DIR: path.join(scratch, 'work'),
    ...arm.env,
  };
}

/** utime + stime of a process (all its threads), ms. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8')
    .replace(/^.*\) /, '')
    .split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // USER_HZ is 100 on Linux
}

function statusKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN);
}

/** The process and all its descendants. */
function tree(pid: number): number[] {
  const out = [pid];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const kids = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
    for (const k of kids ? kids.split(' ') : []) out.push(...tree(Number(k)));
  }
  return out;
}

function spawnWorker(api: FakeJobApi, arm: Arm): { child: ChildProcess; spawnedAt: number; exit: Promise<unknown> } {
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, [launcher as string], {
    cwd: scratch,
    env: workerEnv(api, arm),
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exit = new Promise((resolve) => child.once('exit', resolve));
  return { child, spawnedAt, exit };
}

interface StartSample {
  firstTakeMs: number;
  cpuMsAtFirstTake: number;
  idleRssMiB: number;
  peakRssMiB: number;
  processes: number;
}

async function startOnce(arm: Arm): Promise<StartSample> {
  const api = await startFakeJobApi({ holdMs: 60_000 });
  const w = spawnWorker(api, arm);
  try {
    const take = await api.waitFor((r) => r.kind === 'take', 20_000);
    const cpu = cpuMs(w.child.pid as number);
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const pids = tree(w.child.pid as number);
    const rss = pids.reduce((sum, pid) => sum + statusKiB(pid, 'VmRSS'), 0);
    return {
      firstTakeMs: take.at - w.spawnedAt,
      cpuMsAtFirstTake: cpu,
      idleRssMiB: rss / 1024,
      peakRssMiB: statusKiB(w.child.pid as number, 'VmHWM') / 1024,
      processes: pids.length,
    };
  } finally {
    w.child.kill('SIGTERM');
    await w.exit;
    await api.close();
  }
}

/** A job queued before the worker starts: spawn → its result posted (the input fails validation at once). */
async function firstResultOnce(arm: Arm): Promise<number> {
  const api = await startFakeJobApi({ holdMs: 60_000 });
  api.addJobs({ id: 'first', input: {} });
  const w = spawnWorker(api, arm);
  try {
    const done = await api.waitFor((r) => r.kind === 'done' && r.jobId === 'first', 20_000);
    return done.at - w.spawnedAt;
  } finally {
    w.child.kill('SIGTERM');
    await w.exit;
    await api.close();
  }
}

/**
 * Take → run → done for `jobs` jobs whose input fails validation: the runtime's and the app's fixed
 * cost per job; then the worker's idle memory again, 3 s and 30 s after those jobs (a burst grows
 * V8's heap; its memory reducer gives it back once the process has been idle for a while).
 */
async function perJob(
  jobs: number,
): Promise<{ meanMs: number; p50Ms: number; p95Ms: number; idleRssAfterMiB: number; idleRss30sAfterMiB: number }> {
  const api = await startFakeJobApi({ holdMs: 60_000 });
  const w = spawnWorker(api, ARMS[0] as Arm);
  const isDone = (r: { kind: string }): boolean => r.kind === 'done';
  try {
    const warmup = 50;
    api.addJobs(...Array.from({ length: warmup }, (_, i) => ({ id: `warm-${i}`, input: {} })));
    await api.waitFor(isDone, 30_000, warmup);
    const t0 = performance.now();
    api.addJobs(...Array.from({ length: jobs }, (_, i) => ({ id: `job-${i}`, input: {} })));
    await api.waitFor(isDone, 120_000, warmup + jobs);
    const done = api.requests
      .filter(isDone)
      .slice(warmup)
      .map((r) => r.at);
    const gaps = done.map((t, i) => t - (i === 0 ? t0 : (done[i - 1] as number)));
    const rss = (): number => tree(w.child.pid as number).reduce((sum, pid) => sum + statusKiB(pid, 'VmRSS'), 0) / 1024;
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const after = rss();
    await new Promise((r) => setTimeout(r, 30_000 - IDLE_MS));
    return {
      meanMs: ((done.at(-1) as number) - t0) / jobs,
      p50Ms: pct(gaps, 50),
      p95Ms: pct(gaps, 95),
      idleRssAfterMiB: after,
      idleRss30sAfterMiB: rss(),
    };
  } finally {
    w.child.kill('SIGTERM');
    await w.exit;
    await api.close();
  }
}

function pct(xs: number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}
const r1 = (n: number): number => Math.round(n * 10) / 10;
function summary(xs: number[]): { median: number; min: number; max: number } {
  return { median: r1(pct(xs, 50)), min: r1(Math.min(...xs)), max: r1(Math.max(...xs)) };
}

const loadBefore = os.loadavg();
try {
  // One unmeasured start per arm: the disk cache and the fakes are warm for every measured one.
  for (const arm of ARMS) await startOnce(arm);
  const samples = new Map<string, StartSample[]>(ARMS.map((a) => [a.name, []]));
  const firstResults = new Map<string, number[]>(ARMS.map((a) => [a.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const arm of ARMS) {
      samples.get(arm.name)?.push(await startOnce(arm));
      firstResults.get(arm.name)?.push(await firstResultOnce(arm));
    }
  }
  const arms = ARMS.map((arm) => {
    const s = samples.get(arm.name) as StartSample[];
    return {
      arm: arm.name,
      env: arm.env,
      firstTakeMs: summary(s.map((x) => x.firstTakeMs)),
      cpuMsAtFirstTake: summary(s.map((x) => x.cpuMsAtFirstTake)),
      firstResultMs: summary(firstResults.get(arm.name) as number[]),
      idleRssMiB: summary(s.map((x) => x.idleRssMiB)),
      peakRssMiB: summary(s.map((x) => x.peakRssMiB)),
      processes: Math.max(...s.map((x) => x.processes)),
    };
  });
  for (const a of arms) {
    console.log(
      `${a.arm.padEnd(12)} first take: median ${a.firstTakeMs.median} ms (min ${a.firstTakeMs.min}, max ${a.firstTakeMs.max}), ` +
        `CPU by then ${a.cpuMsAtFirstTake.median} ms; first result ${a.firstResultMs.median} ms; ` +
        `idle RSS ${a.idleRssMiB.median} MiB (peak ${a.peakRssMiB.median} MiB, ${a.processes} process(es))`,
    );
  }
  const job = await perJob(JOBS);
  console.log(
    `per job (take → validate → done, ${JOBS} jobs): mean ${r1(job.meanMs)} ms, p50 ${r1(job.p50Ms)} ms, p95 ${r1(job.p95Ms)} ms; ` +
      `idle RSS after them ${r1(job.idleRssAfterMiB)} MiB (3 s), ${r1(job.idleRss30sAfterMiB)} MiB (30 s)`,
  );
  const result = {
    bench: 'runtime',
    date: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      loadavgBefore: loadBefore.map(r1),
      loadavgAfter: os.loadavg().map(r1),
      node: process.version,
    },
    rounds: ROUNDS,
    idleMs: IDLE_MS,
    goals: { firstTakeMs: 150, idleRssMiB: 100 },
    arms,
    perJob: {
      jobs: JOBS,
      meanMs: r1(job.meanMs),
      p50Ms: r1(job.p50Ms),
      p95Ms: r1(job.p95Ms),
      idleRssAfterMiB: r1(job.idleRssAfterMiB),
      idleRss30sAfterMiB: r1(job.idleRss30sAfterMiB),
    },
  };
  mkdirSync(path.dirname(resultsFile), { recursive: true });
  writeFileSync(resultsFile, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`written to ${resultsFile}`);
} finally {
  await comfy.close();
  rmSync(scratch, { recursive: true, force: true });
}
