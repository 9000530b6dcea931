// Child-process tests: real signals, real exit codes, a blocked event loop.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { startFakeJobApi, type FakeJobApi } from '../fakes/runpod-job-api';
import { API_KEY } from './helpers';
import { collectOutput } from '../support/child-output';

const here = path.dirname(fileURLToPath(import.meta.url));
let tmp: string;
let entry: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'rp-proc-'));
  entry = path.join(tmp, 'worker.cjs');
  await build({
    entryPoints: [path.join(here, 'fixtures/worker-entry.ts')],
    outfile: entry,
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    logLevel: 'warning',
  });
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

interface Child {
  exit: Promise<number | null>;
  stdout: () => string;
  kill: (signal: NodeJS.Signals) => void;
  waitForLine: (text: string, timeoutMs?: number) => Promise<void>;
}

function startChild(args: string[], env: Record<string, string>, cwd = tmp): Child {
  const child = spawn(process.execPath, [entry, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = collectOutput(child);
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    exit,
    stdout: () => output.text(),
    kill: (s) => child.kill(s),
    waitForLine: (text, timeoutMs = 15_000) => output.waitFor(text, timeoutMs),
  };
}

function productionEnv(api: FakeJobApi, extra: Record<string, string> = {}): Record<string, string> {
  return {
    RUNPOD_WEBHOOK_GET_JOB: api.templates.jobTakeUrl,
    RUNPOD_WEBHOOK_POST_OUTPUT: api.templates.jobDoneUrl,
    RUNPOD_WEBHOOK_POST_STREAM: api.templates.jobStreamUrl,
    RUNPOD_AI_API_KEY: API_KEY,
    RUNPOD_POD_ID: 'wrk1',
    ...extra,
  };
}

describe('production worker process', () => {
  it('on SIGTERM aborts its long polls, finishes the running job, posts it and exits 0', async () => {
    // Polls held for 60 s: only an aborted poll lets the process exit quickly.
    const api = await startFakeJobApi({ holdMs: 60_000 });
    try {
      api.addJobs({ id: 'term1', input: { sleepMs: 600 } });
      const child = startChild([], productionEnv(api, { SHUTDOWN_GRACE_S: '20' }));
      await child.waitForLine('"job started"');
      const takesBefore = api.of('take').length;
      child.kill('SIGTERM');
      const started = performance.now();
      expect(await child.exit).toBe(0);
      expect(performance.now() - started).toBeLessThan(15_000); // polls are held 60 s: only aborting them exits sooner
      const done = api.of('done');
      expect(done.map((r) => [r.jobId, r.text])).toEqual([['term1', '{"output": {"ok": true, "id": "term1"}}']]);
      expect(api.of('take')).toHaveLength(takesBefore);
    } finally {
      await api.close();
    }
  });

  it('keeps the heartbeat going while a handler blocks the event loop', async () => {
    const api = await startFakeJobApi({ holdMs: 60_000 });
    try {
      api.addJobs({ id: 'busy1', input: { busyMs: 5200 } });
      const child = startChild([], productionEnv(api, { RUNPOD_WEBHOOK_PING: api.templates.pingUrl, RUNPOD_PING_INTERVAL: '1000' }));
      await api.waitFor((r) => r.kind === 'done' && r.jobId === 'busy1', 25_000);
      const pings = api.of('ping').filter((r) => r.query.get('job_id') === 'busy1');
      // Blocked for 5.2 s with a 1 s interval: a main-thread heartbeat would send at most one; the
      // thread sends about five, so two leave room for a slow machine.
      expect(pings.length).toBeGreaterThanOrEqual(2);
      child.kill('SIGTERM');
      expect(await child.exit).toBe(0);
    } finally {
      await api.close();
    }
  });
});

describe('one-shot test mode process', () => {
  it('exits 0 on success and 1 on a missing file, missing input, bad JSON or a failed job', async () => {
    const withFile = await mkdtemp(path.join(tmp, 'cwd-'));
    await writeFile(path.join(withFile, 'test_input.json'), JSON.stringify({ id: 'from-file', input: { n: 1 } }));
    const runs = {
      file: startChild([], {}, withFile),
      missing: startChild([], {}, await mkdtemp(path.join(tmp, 'empty-'))),
      flagWins: startChild(['--test_input', '{"input":{"fail":"INVALID_INPUT: width must be a multiple of 16"}}'], {}, withFile),
      noInput: startChild(['--test_input', '{"other":1}'], {}),
      badJson: startChild(['--test_input', '{nope'], {}),
    };
    const codes = Object.fromEntries(await Promise.all(Object.entries(runs).map(async ([k, c]) => [k, await c.exit] as const)));
    expect(codes).toEqual({ file: 0, missing: 1, flagWins: 1, noInput: 1, badJson: 1 });
    expect(runs.file.stdout()).toContain('"id": "from-file"');
    expect(runs.file.stdout()).toContain('Job from-file completed successfully.');
    expect(runs.missing.stdout()).toContain('test_input.json not found, exiting.');
    expect(runs.flagWins.stdout()).toMatch(/Job local_test-\w+-\w+ failed with error: INVALID_INPUT: width must be a multiple of 16/);
    expect(runs.noInput.stdout()).toContain('Job has no input parameter. Unable to run.');
  });
});
