// Prints (1) process start → first job-take request and (2) per-job runtime overhead with a no-op
// handler, against the loopback fake of RunPod's job API. Goals: < 150 ms and < 5 ms.
import { spawn } from 'node:child_process';
import { startFakeJobApi, type FakeJobApi } from '../test/fakes/runpod-job-api';

const workerBundle = process.argv[2];
if (!workerBundle) throw new Error('usage: runtime.cjs <worker bundle>');

function env(api: FakeJobApi): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    RUNPOD_WEBHOOK_GET_JOB: api.templates.jobTakeUrl,
    RUNPOD_WEBHOOK_POST_OUTPUT: api.templates.jobDoneUrl,
    RUNPOD_WEBHOOK_POST_STREAM: api.templates.jobStreamUrl,
    RUNPOD_AI_API_KEY: 'bench-key',
    RUNPOD_POD_ID: 'bench',
  };
}

function startWorker(api: FakeJobApi): { spawnedAt: number; stop: () => Promise<number | null> } {
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, [workerBundle as string], { env: env(api), stdio: ['ignore', 'ignore', 'inherit'] });
  const exit = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  return {
    spawnedAt,
    stop: () => {
      child.kill('SIGTERM');
      return exit;
    },
  };
}

const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;
const fmt = (n: number): string => n.toFixed(2);

async function startup(runs: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const api = await startFakeJobApi({ holdMs: 60_000 });
    const w = startWorker(api);
    const take = await api.waitFor((r) => r.kind === 'take', 10_000);
    times.push(take.at - w.spawnedAt);
    await w.stop();
    await api.close();
  }
  return times;
}

async function perJob(warmup: number, jobs: number): Promise<{ mean: number; gaps: number[] }> {
  const api = await startFakeJobApi({ holdMs: 60_000 });
  const w = startWorker(api);
  const isDone = (r: { kind: string }): boolean => r.kind === 'done';
  api.addJobs(...Array.from({ length: warmup }, (_, i) => ({ id: `warm-${i}`, input: {} })));
  await api.waitFor(isDone, 30_000, warmup);
  const before = api.requests.filter(isDone).length;
  const t0 = performance.now();
  api.addJobs(...Array.from({ length: jobs }, (_, i) => ({ id: `job-${i}`, input: {} })));
  await api.waitFor(isDone, 60_000, before + jobs);
  const done = api.requests.filter(isDone).slice(before).map((r) => r.at);
  const total = (done[done.length - 1] as number) - t0;
  const gaps = done.slice(1).map((t, i) => t - (done[i] as number));
  await w.stop();
  await api.close();
  return { mean: total / jobs, gaps };
}

const start = await startup(7);
console.log(`process start → first job-take request: median ${fmt(pct(start, 50))} ms, min ${fmt(Math.min(...start))} ms, max ${fmt(Math.max(...start))} ms (${start.length} runs; goal < 150 ms)`);
const job = await perJob(50, 500);
console.log(
  `per-job overhead, no-op handler, take → run → done on loopback: mean ${fmt(job.mean)} ms, p50 ${fmt(pct(job.gaps, 50))} ms, p95 ${fmt(pct(job.gaps, 95))} ms (500 jobs; goal < 5 ms)`,
);
