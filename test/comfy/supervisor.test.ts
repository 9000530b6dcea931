import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn as nodeSpawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { build } from 'esbuild';
import { ComfyClient } from '../../src/comfy/client';
import { loadConfig } from '../../src/config';
import {
  ComfySupervisor,
  failureReason,
  type ComfySettings,
  type ComfyStatus,
  type ComfySupervisorOptions,
} from '../../src/comfy/supervisor';
import { WorkerError } from '../../src/lib/errors';
import { silentLogger } from '../../src/lib/logger';
import { FakeComfyUI } from '../fakes/comfyui';
import { attachedSupervisor, recordingLogger, rejection, startHarness, vhsWorkflow } from './helpers';
import { freePort } from '../support/free-port';

const APP_NAMES = loadConfig({}).comfy.names;
const REQUIRED = ['VHS_VideoCombine', 'WanVideoSampler'] as const;
let bundleDir: string;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  bundleDir = mkdtempSync(path.join(os.tmpdir(), 'comfy-standin-'));
  await build({
    entryPoints: [path.resolve('test/fakes/comfyui-process.ts')],
    outfile: path.join(bundleDir, 'main.py'),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node22',
    logLevel: 'warning',
  });
});
afterAll(() => rmSync(bundleDir, { recursive: true, force: true }));
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Fixture {
  supervisor: ComfySupervisor;
  dir: string;
  workDir: string;
  spawned: number[];
}

/** A ComfyUI "checkout" holding the stand-in as main.py, run with node instead of python. */
async function fixture(
  behaviour: Record<string, unknown>,
  overrides: Omit<Partial<ComfySupervisorOptions>, 'config'> & { config?: Partial<ComfySettings> } = {},
): Promise<Fixture> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'comfy-dir-'));
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'comfy-work-'));
  copyFileSync(path.join(bundleDir, 'main.py'), path.join(dir, 'main.py'));
  writeFileSync(path.join(dir, 'standin.json'), JSON.stringify(behaviour));
  const spawned: number[] = [];
  const { config: configOverrides, ...rest } = overrides;
  const supervisor = new ComfySupervisor({
    config: {
      dir,
      python: process.execPath,
      url: undefined,
      port: await freePort(),
      extraArgs: ['--verbose', 'INFO'],
      startupTimeoutMs: 10_000,
      extraModelPathsConfig: undefined,
      names: APP_NAMES,
      ...configOverrides,
    },
    workDir,
    requiredNodeClasses: REQUIRED,
    logger: silentLogger,
    probeIntervalMs: 25,
    restartMinDelayMs: 10,
    restartMaxDelayMs: 20,
    stopGraceMs: 2000,
    // python's -u (unbuffered) means nothing to node; everything else is passed as is
    spawn: ((cmd: string, args: string[], opts: object) => {
      const child = nodeSpawn(
        cmd,
        args.filter((a) => a !== '-u'),
        opts,
      );
      if (child.pid) spawned.push(child.pid);
      return child;
    }) as unknown as typeof nodeSpawn,
    ...rest,
  });
  cleanups.push(async () => {
    await supervisor.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(workDir, { recursive: true, force: true });
  });
  return { supervisor, dir, workDir, spawned };
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('ComfySupervisor (spawned stand-in)', () => {
  it("runs ComfyUI in the environment the settings give (the hook reads it), else in the worker's own", async () => {
    const seen: (NodeJS.ProcessEnv | undefined)[] = [];
    const spawn = ((cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv }) => {
      seen.push(opts.env);
      return nodeSpawn(
        cmd,
        args.filter((a) => a !== '-u'),
        opts,
      );
    }) as unknown as typeof nodeSpawn;
    const env = { ...process.env, STEADYDANCER_TEXT_EMBED_DIR: '/models/../text-embeds/umt5' };
    const withEnv = await fixture({ nodeClasses: [...REQUIRED] }, { spawn, config: { env } });
    withEnv.supervisor.start();
    await withEnv.supervisor.ready();
    const inherited = await fixture({ nodeClasses: [...REQUIRED] }, { spawn });
    inherited.supervisor.start();
    await inherited.supervisor.ready();
    expect(seen).toEqual([env, undefined]);
  });

  it('starts ComfyUI headless with per-worker folders and becomes ready; its lines reach the logs tagged', async () => {
    const logger = recordingLogger();
    const modelPaths = path.join(os.tmpdir(), `emp-${process.pid}.yaml`);
    writeFileSync(modelPaths, 'a: {}\n');
    cleanups.push(() => rmSync(modelPaths, { force: true }));
    const f = await fixture({ nodeClasses: [...REQUIRED] }, { logger, config: { extraModelPathsConfig: modelPaths } });
    f.supervisor.start();
    f.supervisor.start(); // idempotent
    const endpoint = await f.supervisor.ready();
    expect(f.spawned).toHaveLength(1);
    const argv = JSON.parse(readFileSync(path.join(f.dir, 'argv.json'), 'utf8')) as string[];
    const port = new URL(endpoint.baseUrl).port;
    expect(argv.join(' ')).toBe(
      [
        '--listen 127.0.0.1',
        `--port ${port}`,
        '--disable-auto-launch',
        '--disable-metadata',
        '--preview-method none',
        `--input-directory ${endpoint.inputDir}`,
        `--output-directory ${endpoint.outputDir}`,
        `--temp-directory ${endpoint.tempDir}`,
        `--extra-model-paths-config ${modelPaths}`,
        '--verbose INFO',
      ].join(' '),
    );
    expect(endpoint.outputDir!.startsWith(f.workDir)).toBe(true);
    expect(endpoint.baseUrl).toBe(`http://127.0.0.1:${port}`);
    expect(
      logger.lines.some(
        (l) =>
          l.message === 'Checkpoint files will always be loaded safely.' && l.fields.source === 'comfyui' && l.fields.stream === 'stdout',
      ),
    ).toBe(true);
    expect(logger.lines.some((l) => l.message.startsWith('Total VRAM') && l.fields.stream === 'stderr')).toBe(true);
    expect(f.supervisor.healthy).toBe(true);
  });

  it('lets callers await readiness through a slow boot, and a waiting caller can give up with its signal', async () => {
    const f = await fixture({ nodeClasses: [...REQUIRED], bootDelayMs: 700 });
    const t0 = Date.now();
    f.supervisor.start();
    // start() does not block: it returns while ComfyUI is still booting (readiness still pending)
    let readyYet = false;
    void f.supervisor.ready().then(
      () => (readyYet = true),
      () => {},
    );
    await new Promise((r) => setImmediate(r));
    expect(readyYet).toBe(false);
    const ac = new AbortController();
    const early = f.supervisor.ready(ac.signal);
    ac.abort(new Error('gave up'));
    await expect(early).rejects.toThrow('gave up');
    await expect(f.supervisor.ready()).resolves.toMatchObject({ baseUrl: expect.any(String) });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(600);
  });

  it('fails readiness at the deadline quoting what ComfyUI printed and the last probe error, logs what it waits for, kills the hung boot and counts it', async () => {
    const logger = recordingLogger();
    // 3 s: enough for the stand-in to start and print on a busy machine, far below its 20 s boot
    const f = await fixture({ bootDelayMs: 20_000 }, { logger, config: { startupTimeoutMs: 3000 }, maxRestarts: 0, now: leapingClock() });
    const err = await rejection(f.supervisor.ready());
    expect(err.code).toBe('COMFY_UNAVAILABLE');
    expect(err.message).toContain('COMFYUI_STARTUP_TIMEOUT_S');
    expect(err.message).toContain('last problem: ECONNREFUSED');
    expect(err.details.lastError).toBe('ECONNREFUSED');
    expect(err.message).toContain('Checkpoint files will always be loaded safely.');
    const port = new URL(f.supervisor.status().url).port;
    expect(logger.lines).toContainEqual(
      expect.objectContaining({ level: 'info', message: `waiting for ComfyUI at http://127.0.0.1:${port} (ECONNREFUSED)` }),
    );
    await waitFor(() => !f.supervisor.healthy);
    expect(isAlive(f.spawned[0]!)).toBe(false);
  });

  it('fails at once when ComfyUI exits during boot, quoting the import error', async () => {
    const f = await fixture(
      {
        failAtBoot: [
          'Traceback (most recent call last):',
          '  File "/comfyui/custom_nodes/ComfyUI-WanVideoWrapper/__init__.py", line 3',
          "ModuleNotFoundError: No module named 'sageattention'",
        ],
      },
      { maxRestarts: 0 },
    );
    const t0 = Date.now();
    const err = await rejection(f.supervisor.ready());
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(err.code).toBe('COMFY_UNAVAILABLE');
    expect(err.message).toContain('exited with code 1 during start-up');
    expect(err.message).toContain("No module named 'sageattention'");
    expect(f.supervisor.healthy).toBe(false);
  });

  it('names the node classes missing from /object_info with the pack to install, kills that ComfyUI and turns unhealthy at once (a restart cannot add them)', async () => {
    const logger = recordingLogger();
    const wrapper = {
      name: 'ComfyUI-WanVideoWrapper',
      repo: 'https://github.com/kijai/ComfyUI-WanVideoWrapper',
      commit: '2ee9e2f3561b6f387024291d7d134ef8b2d6d344',
      classes: ['WanVideoSampler', 'WanVideoDecode'],
    };
    const vhs = {
      name: 'ComfyUI-VideoHelperSuite',
      repo: 'https://github.com/Kosinkadink/ComfyUI-VideoHelperSuite',
      commit: '8550981384301e9bc5bfea83e5c2c75258102593',
      classes: ['VHS_VideoCombine'],
    };
    const f = await fixture({ nodeClasses: ['VHS_VideoCombine'] }, { logger, maxRestarts: 3, nodePacks: [vhs, wrapper] });
    const err = await rejection(f.supervisor.ready());
    expect(err.code).toBe('COMFY_UNAVAILABLE');
    expect(err.details.missingNodeClasses).toEqual(['WanVideoSampler']);
    expect(err.details.missingNodePacks).toEqual([
      { name: wrapper.name, repo: wrapper.repo, commit: wrapper.commit, classes: ['WanVideoSampler'] },
    ]);
    expect(err.message).toContain(
      `ComfyUI-WanVideoWrapper (WanVideoSampler): cd ${f.dir}/custom_nodes && git clone ${wrapper.repo} ComfyUI-WanVideoWrapper && ` +
        `git -C ComfyUI-WanVideoWrapper checkout ${wrapper.commit} && ${process.execPath} -m pip install -r ComfyUI-WanVideoWrapper/requirements.txt`,
    );
    expect(err.message).not.toContain('VideoHelperSuite'); // only what is missing
    expect(f.supervisor.status()).toMatchObject({ state: 'unhealthy', lastError: expect.stringContaining('WanVideoSampler') });
    expect(f.supervisor.healthy).toBe(false); // the job pipeline answers refresh_worker
    await waitFor(() => logger.lines.some((l) => l.message === 'ComfyUI killed'));
    expect(isAlive(f.spawned[0]!)).toBe(false);
    // the exit was handled and no restart is pending: later jobs get the same error, not a new boot
    expect((await rejection(f.supervisor.ready())).details.missingNodeClasses).toEqual(['WanVideoSampler']);
    expect(f.spawned).toHaveLength(1);
  });

  it('retries a readiness probe that failed (a thrown /object_info request) until the deadline', async () => {
    let failed = 0;
    const flaky = (async (input: string | URL | Request, init?: RequestInit) => {
      if (String(input).includes('/object_info/') && failed < 2) {
        failed += 1;
        throw new TypeError('fetch failed'); // what undici throws on a reset connection
      }
      return fetch(input, init);
    }) as typeof fetch;
    const f = await fixture({ nodeClasses: [...REQUIRED] }, { fetch: flaky });
    await expect(f.supervisor.ready()).resolves.toMatchObject({ baseUrl: expect.any(String) });
    expect(failed).toBe(2);
    expect(f.supervisor.healthy).toBe(true);
    expect(f.spawned).toHaveLength(1);
  });

  it('reports a crash, fails the running job with COMFY_CRASHED, and restarts ComfyUI', async () => {
    const f = await fixture({ nodeClasses: [...REQUIRED, 'LoadImage'], outcome: 'wait-for-interrupt' });
    const endpoint = await f.supervisor.ready();
    const crashes: WorkerError[] = [];
    const ac = new AbortController();
    f.supervisor.onCrash((err) => {
      crashes.push(err);
      ac.abort(err); // what the job pipeline does
    });
    writeFileSync(path.join(endpoint.inputDir!, 'ref.png'), 'png');
    const client = new ComfyClient({ endpoint, logger: silentLogger, pollIntervalMs: 20, lostAfterMs: 60_000 });
    const job = client.runPrompt(vhsWorkflow(), { signal: ac.signal, timeoutMs: 20_000 });
    await waitFor(
      async () =>
        ((await fetch(`${endpoint.baseUrl}/queue`).then((r) => r.json())) as { queue_running: unknown[] }).queue_running.length > 0,
    );
    await fetch(`${endpoint.baseUrl}/fake/exit`).catch(() => {});
    const err = await rejection(job);
    expect(err.code).toBe('COMFY_CRASHED');
    expect(crashes).toHaveLength(1);
    expect(crashes[0]!.message).toContain('Segmentation fault');
    const again = await f.supervisor.ready();
    expect(f.spawned).toHaveLength(2);
    expect((await fetch(`${again.baseUrl}/system_stats`)).ok).toBe(true);
    expect(f.supervisor.healthy).toBe(true);
  });

  it('turns unhealthy after more failures than maxRestarts and stops restarting', async () => {
    const f = await fixture({ nodeClasses: [...REQUIRED] }, { maxRestarts: 1 });
    let endpoint = await f.supervisor.ready();
    await fetch(`${endpoint.baseUrl}/fake/exit`).catch(() => {});
    await waitFor(() => f.spawned.length === 2); // ready() before the exit is seen would still name the old process
    endpoint = await f.supervisor.ready();
    expect(f.supervisor.healthy).toBe(true);
    await fetch(`${endpoint.baseUrl}/fake/exit`).catch(() => {});
    await waitFor(() => !f.supervisor.healthy);
    expect((await rejection(f.supervisor.ready())).code).toBe('COMFY_UNAVAILABLE');
    expect(f.spawned).toHaveLength(2);
  });

  it('stops ComfyUI with SIGTERM, idempotently; ready() then rejects', async () => {
    const f = await fixture({ nodeClasses: [...REQUIRED] });
    await f.supervisor.ready();
    const pid = f.spawned[0]!;
    const a = f.supervisor.stop();
    expect(f.supervisor.stop()).toBe(a);
    await a;
    expect(isAlive(pid)).toBe(false);
    expect((await rejection(f.supervisor.ready())).code).toBe('COMFY_UNAVAILABLE');
  });

  it('kills a ComfyUI that ignores SIGTERM after the grace', async () => {
    const f = await fixture({ nodeClasses: [...REQUIRED], ignoreSigterm: true }, { stopGraceMs: 300 });
    await f.supervisor.ready();
    const pid = f.spawned[0]!;
    const t0 = Date.now();
    await f.supervisor.stop();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(isAlive(pid)).toBe(false);
  });
});

describe('ComfySupervisor with a process that outlives SIGKILL', () => {
  it('stop() gives up waiting after killWaitMs, so the worker can exit, and reports itself unhealthy', async () => {
    const signals: string[] = [];
    // a ComfyUI stuck in the GPU driver: no signal ends it
    const stuck = Object.assign(new EventEmitter(), {
      pid: 999_999,
      exitCode: null,
      signalCode: null,
      stdout: new PassThrough(),
      stderr: new PassThrough(),
      kill: (sig: string) => signals.push(sig) > 0,
    });
    const logger = recordingLogger();
    const workDir = mkdtempSync(path.join(os.tmpdir(), 'comfy-work-'));
    cleanups.push(() => rmSync(workDir, { recursive: true, force: true }));
    const supervisor = new ComfySupervisor({
      config: {
        dir: workDir,
        python: 'python3',
        url: undefined,
        port: await freePort(),
        extraArgs: [],
        startupTimeoutMs: 10_000,
        extraModelPathsConfig: undefined,
      },
      workDir,
      requiredNodeClasses: REQUIRED,
      logger,
      probeIntervalMs: 25,
      stopGraceMs: 50,
      killWaitMs: 100,
      spawn: (() => stuck) as unknown as typeof nodeSpawn,
    });
    supervisor.start();
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<string>((resolve) => (timer = setTimeout(() => resolve('stop() hung'), 3000)));
    await expect(Promise.race([supervisor.stop().then(() => 'stopped'), hung])).resolves.toBe('stopped');
    clearTimeout(timer);
    expect(signals).toEqual(['SIGTERM', 'SIGKILL']);
    expect(supervisor.healthy).toBe(false);
    expect(logger.lines.some((l) => l.level === 'error' && l.message.includes('did not exit after SIGKILL'))).toBe(true);
  });
});

describe('failureReason', () => {
  it('says why a probe failed in a few words: the errno undici hides, a timeout, else the message', () => {
    expect(
      failureReason(
        new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8188'), { code: 'ECONNREFUSED' }) }),
        5000,
      ),
    ).toBe('ECONNREFUSED');
    expect(
      failureReason(
        new TypeError('fetch failed', { cause: Object.assign(new Error('getaddrinfo ENOTFOUND comfy'), { code: 'ENOTFOUND' }) }),
        5000,
      ),
    ).toBe('ENOTFOUND');
    expect(
      failureReason(
        new TypeError('fetch failed', { cause: Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }) }),
        5000,
      ),
    ).toBe('other side closed');
    expect(failureReason(new DOMException('The operation was aborted due to timeout', 'TimeoutError'), 30_000)).toBe(
      'no answer within 30 s',
    );
    expect(failureReason(new SyntaxError('Unexpected token < in JSON'), 5000)).toBe('Unexpected token < in JSON');
  });
});

describe('ComfySupervisor attached to COMFYUI_URL', () => {
  const external = (
    url: string,
    over: Partial<ComfySupervisorOptions> & { startupTimeoutMs?: number; withoutNames?: boolean } = {},
  ): ComfySupervisor => {
    const { withoutNames = false, ...rest } = over;
    const supervisor = attachedSupervisor(url, {
      requiredNodeClasses: REQUIRED,
      probeIntervalMs: 20,
      ...(withoutNames ? {} : { names: APP_NAMES }),
      ...rest,
    });
    cleanups.push(() => supervisor.stop());
    return supervisor;
  };

  it('waits for a ComfyUI that restarted since the last job instead of failing the job, and says what it waits for', async () => {
    const h = await startHarness([...REQUIRED]);
    cleanups.push(() => h.close());
    const { port, url } = h.fake;
    const logger = recordingLogger();
    let refused = 0;
    const counting = (async (input: string | URL | Request, init?: RequestInit) =>
      fetch(input, init).catch((err: unknown) => {
        refused += 1;
        throw err;
      })) as typeof fetch;
    const supervisor = external(url, { logger, fetch: counting });
    await supervisor.ready();
    expect(supervisor.status()).toEqual({ state: 'ready', url });

    await h.fake.crash(); // ComfyUI restarting: nothing listens for a while
    const waits: ComfyStatus[] = [];
    const job = supervisor.ready(undefined, (s) => waits.push(s));
    let settled = false;
    void job.then(
      () => (settled = true),
      () => (settled = true),
    );
    await waitFor(() => refused >= 5); // the liveness check and several probes were refused…
    expect(settled).toBe(false); // …and the job still waits
    // the check may first meet the kept-alive connection the crash cut, then nothing listening
    const cut = /^(other side closed|ECONNREFUSED)$/;
    expect(waits).toEqual([{ state: 'starting', url, lastError: expect.stringMatching(cut) }]);
    expect(supervisor.status()).toEqual({ state: 'starting', url, lastError: 'ECONNREFUSED' });
    const warned = logger.lines.filter((l) => l.level === 'warn').map((l) => l.message);
    expect(warned).toEqual([
      expect.stringMatching(
        new RegExp(`^ComfyUI at ${url} does not answer \\((other side closed|ECONNREFUSED)\\); waiting for it \\(restarting\\?\\)$`),
      ),
    ]);

    const back = await FakeComfyUI.start({ dirs: h.dirs, port, nodeClasses: [...REQUIRED] });
    cleanups.push(() => back.close());
    await expect(job).resolves.toEqual({ baseUrl: url });
    expect(back.requests.map((r) => r.path)).toEqual(['/system_stats', '/object_info/VHS_VideoCombine', '/object_info/WanVideoSampler']);
    expect(supervisor.status().state).toBe('ready');
  });

  it('checks a ready external ComfyUI once per call (one /system_stats) and shares the check between concurrent callers', async () => {
    const h = await startHarness([...REQUIRED]);
    cleanups.push(() => h.close());
    const supervisor = external(h.fake.url);
    await supervisor.ready();
    const before = h.fake.requests.length;
    await Promise.all([supervisor.ready(), supervisor.ready(), supervisor.checkedStatus()]);
    expect(h.fake.requests.slice(before).map((r) => r.path)).toEqual(['/system_stats']);
  });

  it('pointing at nothing: logs "waiting for ComfyUI at <url> (ECONNREFUSED)" about every 15 s and puts the last error in the timeout', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const logger = recordingLogger();
    const supervisor = external(url, { logger, startupTimeoutMs: 500, now: leapingClock() });
    expect(supervisor.status()).toEqual({ state: 'starting', url });
    const err = await rejection(supervisor.ready());
    expect(err.code).toBe('COMFY_UNAVAILABLE');
    expect(err.message).toBe(`ComfyUI at ${url} was not ready within 1 s (COMFYUI_STARTUP_TIMEOUT_S); last problem: ECONNREFUSED.`);
    const waiting = logger.lines.filter((l) => l.message === `waiting for ComfyUI at ${url} (ECONNREFUSED)`);
    expect(waiting.length).toBeGreaterThan(0);
    expect(waiting[0]!.fields).toMatchObject({ waitedS: expect.any(Number), timeoutS: 1 });
    expect(supervisor.status()).toEqual({ state: 'unhealthy', url, lastError: err.message });
  });

  it('names no setting in the timeout when the host gives no names', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const err = await rejection(external(url, { startupTimeoutMs: 500, withoutNames: true, now: leapingClock() }).ready());
    expect(err.message).toBe(`ComfyUI at ${url} was not ready within 1 s; last problem: ECONNREFUSED.`);
  });

  it('names an HTTP error of the probe as its last problem', async () => {
    const h = await startHarness([...REQUIRED]);
    cleanups.push(() => h.close());
    const answers = (async (input: string | URL | Request) =>
      String(input).endsWith('/system_stats') ? new Response('bad gateway', { status: 502 }) : fetch(input)) as typeof fetch;
    const err = await rejection(external(h.fake.url, { fetch: answers, startupTimeoutMs: 200 }).ready());
    expect(err.message).toContain('last problem: HTTP 502 from /system_stats.');
  });

  it('spawns nothing and probes the given server', async () => {
    const h = await startHarness([...REQUIRED]);
    cleanups.push(() => h.close());
    const supervisor = new ComfySupervisor({
      config: {
        dir: '/nonexistent',
        python: 'python3',
        url: `${h.fake.url}/`,
        port: 1,
        extraArgs: [],
        startupTimeoutMs: 5000,
        extraModelPathsConfig: undefined,
      },
      workDir: h.root,
      requiredNodeClasses: REQUIRED,
      logger: silentLogger,
      spawn: (() => {
        throw new Error('must not spawn');
      }) as unknown as typeof nodeSpawn,
    });
    cleanups.push(() => supervisor.stop());
    await expect(supervisor.ready()).resolves.toEqual({ baseUrl: h.fake.url });
    expect(h.fake.requests.map((r) => r.path)).toEqual(['/system_stats', '/object_info/VHS_VideoCombine', '/object_info/WanVideoSampler']);
  });
});

/** A clock 16 s further on at every reading: each probe is "15 s" after the last, without waiting. */
function leapingClock(): () => number {
  let t = 0;
  return () => (t += 16_000);
}

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
