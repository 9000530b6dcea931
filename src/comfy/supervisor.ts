// Runs ComfyUI as a child process (or attaches to one at COMFYUI_URL): boot, readiness, tagged logs,
// crash detection with bounded restarts, clean shutdown. Readiness is a promise the job pipeline awaits,
// so work that does not need ComfyUI (fetching inputs) overlaps the boot.
import { spawn as nodeSpawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { delay } from '../lib/delay';
import { WorkerError } from '../lib/errors';
import type { Logger } from '../lib/logger';
import { backoffDelay } from '../lib/retry';
import { comfyArgs, comfyLayout } from './args';
import type { ComfyEndpoint } from './endpoint';
import { describeMissingClasses, type NodePack } from './node-packs';
import { OutputLines } from './output-lines';
import { comfyError } from './errors';

/** Where ComfyUI lives and how to run it (src/config.ts builds it from COMFYUI_* variables). */
export interface ComfySettings {
  readonly dir: string;
  readonly python: string;
  /** An already running ComfyUI; when set nothing is spawned. */
  readonly url: string | undefined;
  readonly port: number;
  readonly extraArgs: readonly string[];
  readonly startupTimeoutMs: number;
  /** An extra_model_paths.yaml passed with --extra-model-paths-config when the file exists
   * (ComfyUI reads <dir>/extra_model_paths.yaml by itself). */
  readonly extraModelPathsConfig: string | undefined;
  /** ComfyUI's environment; undefined = the worker's own. */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
  /** What the host calls these settings, for messages that say what to change. */
  readonly names?: ComfySettingNames;
}

/** The host's names of the settings the messages point at (this worker: its environment variables). */
export interface ComfySettingNames {
  readonly url?: string;
  readonly startupTimeout?: string;
  readonly extraArgs?: string;
}

export interface ComfySupervisorOptions {
  config: ComfySettings;
  workDir: string;
  /** Node classes every workflow needs; readiness fails naming the ones /object_info lacks. */
  requiredNodeClasses: readonly string[];
  /** Which pack provides which class: a readiness failure then says what to install. */
  nodePacks?: readonly NodePack[];
  logger: Logger;
  spawn?: typeof nodeSpawn;
  fetch?: typeof fetch;
  now?: () => number;
  /** Pause between readiness probes. Default 500 ms. */
  probeIntervalMs?: number;
  /** While ComfyUI is not ready, log what it is waiting for this often. Default 15 s. */
  waitLogIntervalMs?: number;
  /** Unexpected exits tolerated (each followed by a restart) before `healthy` turns false. Default 3. */
  maxRestarts?: number;
  /** Restart backoff. Defaults 1 s … 30 s. */
  restartMinDelayMs?: number;
  restartMaxDelayMs?: number;
  /** A ComfyUI that stayed up this long has its failure count reset. Default 5 min. */
  stableAfterMs?: number;
  /** SIGTERM → SIGKILL grace on stop. Default 10 s. */
  stopGraceMs?: number;
  /** How long to wait for the exit after SIGKILL (a process stuck in the GPU driver may never exit). Default 5 s. */
  killWaitMs?: number;
}

// Deadlines of one readiness probe's requests; a probe that fails is tried again until the start-up deadline.
const STATS_TIMEOUT_MS = 5000;
const OBJECT_INFO_TIMEOUT_MS = 30_000;

type BootState = 'booting' | 'ready' | 'failed';

/** ComfyUI's state for /health. */
export interface ComfyStatus {
  state: 'starting' | 'ready' | 'unhealthy';
  url: string;
  /** Why it is not ready: the last failed probe (e.g. ECONNREFUSED) or the failure; absent when ready. */
  lastError?: string;
}

interface Boot {
  state: BootState;
  /** What the last readiness probe of this boot failed on. */
  problem?: string;
  /** A running check that an external ComfyUI still answers (shared by concurrent callers). */
  liveness?: Promise<void>;
  promise: Promise<ComfyEndpoint>;
  resolve: (e: ComfyEndpoint) => void;
  reject: (e: WorkerError) => void;
  /** Ends this boot's probes and timers. */
  abort: AbortController;
  readyAt?: number;
}

export class ComfySupervisor {
  private boot: Boot | undefined;
  private child: ChildProcess | undefined;
  private lines: OutputLines | undefined;
  private started = false;
  private stopping: Promise<void> | undefined;
  private failures = 0;
  private isHealthy = true;
  /** The last failure (a boot that failed, a crash), until ComfyUI is ready again. */
  private lastError: string | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly crashListeners = new Set<(err: WorkerError) => void>();
  private readonly spawn: typeof nodeSpawn;
  private readonly fetch: typeof fetch;
  private readonly now: () => number;
  private readonly log: Logger;
  /** Where ComfyUI answers, the same for every boot: COMFYUI_URL, or the one we spawn (its folders known). */
  private readonly endpoint: ComfyEndpoint;

  constructor(private readonly opts: ComfySupervisorOptions) {
    this.spawn = opts.spawn ?? nodeSpawn;
    this.fetch = opts.fetch ?? globalThis.fetch;
    this.now = opts.now ?? Date.now;
    this.log = opts.logger.child({ component: 'comfy-supervisor' });
    this.endpoint = opts.config.url
      ? { baseUrl: opts.config.url.replace(/\/+$/, '') }
      : { baseUrl: `http://127.0.0.1:${opts.config.port}`, ...comfyLayout(opts.workDir) };
  }

  /**
   * False once ComfyUI cannot be recovered here: it failed more than maxRestarts times in a row, it lacks
   * node classes (a broken image), or it outlived SIGKILL. The worker should then be refreshed.
   */
  get healthy(): boolean {
    return this.isHealthy;
  }

  /** Begins the boot (spawn, or probing COMFYUI_URL). Idempotent. */
  start(): void {
    if (this.started || this.stopping) return;
    this.started = true;
    if (this.opts.config.url) this.attach();
    else this.launch();
  }

  /**
   * Resolves when ComfyUI answers and has every required node class; rejects COMFY_UNAVAILABLE. An
   * external ComfyUI (COMFYUI_URL) is checked first, as it may have restarted since: one that does not
   * answer is waited for again, up to COMFYUI_STARTUP_TIMEOUT_S. `onWait` hears when the caller has to wait.
   */
  async ready(signal?: AbortSignal, onWait?: (status: ComfyStatus) => void): Promise<ComfyEndpoint> {
    if (this.stopping) throw unavailable('ComfyUI is shutting down.');
    this.start();
    if (this.opts.config.url) await this.recheckExternal();
    const boot = this.boot!;
    if (boot.state === 'booting') onWait?.(this.status());
    if (!signal) return boot.promise;
    if (signal.aborted) throw signal.reason;
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      boot.promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  /** ComfyUI's state now, without probing. */
  status(): ComfyStatus {
    const url = this.endpoint.baseUrl;
    const boot = this.boot;
    // while booting the probe's latest failure says most; once failed, the failure (which names it too)
    const report = (state: ComfyStatus['state'], lastError: string | undefined): ComfyStatus => ({
      state,
      url,
      ...(lastError ? { lastError } : {}),
    });
    if (this.stopping) return report('unhealthy', 'ComfyUI was stopped.');
    if (!this.isHealthy) return report('unhealthy', this.lastError ?? boot?.problem);
    if (!boot || boot.state === 'booting') return report('starting', boot?.problem ?? this.lastError);
    if (boot.state === 'ready') return { state: 'ready', url };
    return report('unhealthy', this.lastError ?? boot.problem); // an external ComfyUI not ready in time; the next job probes again
  }

  /** status() after checking that an external ComfyUI which was ready still answers (/health uses it). */
  async checkedStatus(): Promise<ComfyStatus> {
    if (this.opts.config.url && this.boot?.state === 'ready') await this.recheckExternal();
    return this.status();
  }

  /** ComfyUI died after it was ready (the running job is lost). Returns an unsubscribe function. */
  onCrash(listener: (err: WorkerError) => void): () => void {
    this.crashListeners.add(listener);
    return () => this.crashListeners.delete(listener);
  }

  /** SIGTERM, then SIGKILL after the grace. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  // ---- boot ----------------------------------------------------------------------------------------

  private newBoot(): Boot {
    let resolve!: (e: ComfyEndpoint) => void;
    let reject!: (e: WorkerError) => void;
    const promise = new Promise<ComfyEndpoint>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => {}); // nobody may be waiting; ready() hands the rejection to callers
    const boot: Boot = { state: 'booting', promise, resolve, reject, abort: new AbortController() };
    this.boot = boot;
    return boot;
  }

  /** Probes COMFYUI_URL until ready; `problem` says why an earlier ready one is probed again. */
  private attach(problem?: string): void {
    const boot = this.newBoot();
    const { baseUrl } = this.endpoint;
    if (problem) {
      boot.problem = problem;
      this.log.warn(`ComfyUI at ${baseUrl} does not answer (${problem}); waiting for it (restarting?)`, {
        url: baseUrl,
        timeoutS: this.timeoutS(),
      });
    } else {
      this.log.info(`using the running ComfyUI${this.opts.config.names?.url ? ` at ${this.opts.config.names.url}` : ''}`, { url: baseUrl });
    }
    void this.probeUntilReady(boot);
  }

  /** An external ComfyUI: a failed boot is probed again; a ready one must still answer, else it is waited for. */
  private async recheckExternal(): Promise<void> {
    const boot = this.boot!;
    if (boot.state === 'failed') return this.attach();
    if (boot.state !== 'ready') return;
    boot.liveness ??= (async () => {
      const problem = await this.statsProblem(this.endpoint, AbortSignal.timeout(STATS_TIMEOUT_MS));
      if (problem !== undefined && this.boot === boot && !this.stopping) this.attach(problem);
    })().finally(() => (boot.liveness = undefined));
    await boot.liveness;
  }

  /** Spawns ComfyUI for `boot` (a restart passes the boot its waiters already hold). */
  private launch(boot: Boot = this.newBoot()): void {
    const { config } = this.opts;
    const layout = comfyLayout(this.opts.workDir);
    for (const dir of Object.values(layout)) mkdirSync(dir, { recursive: true });
    const modelPaths = config.extraModelPathsConfig && existsSync(config.extraModelPathsConfig) ? config.extraModelPathsConfig : undefined;
    // -u: unbuffered, so ComfyUI's lines reach our logs (and a boot error) as they are printed
    const args = ['-u', ...comfyArgs({ port: config.port, layout, extraModelPathsConfig: modelPaths, extraArgs: config.extraArgs })];
    this.log.info('starting ComfyUI', { python: config.python, dir: config.dir, args });
    const lines = new OutputLines(this.opts.logger.child({ component: 'comfyui' }));
    this.lines = lines;
    let child: ChildProcess;
    try {
      child = this.spawn(config.python, args, {
        cwd: config.dir,
        stdio: ['ignore', 'pipe', 'pipe'],
        ...(config.env ? { env: config.env } : {}),
      });
    } catch (err) {
      this.onExit(boot, undefined, null, null, err);
      return;
    }
    this.child = child;
    lines.attach(child.stdout, 'stdout');
    lines.attach(child.stderr, 'stderr');
    let exited = false;
    const exitOnce = (code: number | null, sig: NodeJS.Signals | null, err?: unknown) => {
      if (exited) return;
      exited = true;
      if (this.child === child) this.child = undefined;
      this.onExit(boot, child, code, sig, err);
    };
    child.once('error', (err) => exitOnce(null, null, err));
    child.once('exit', (code, sig) => exitOnce(code, sig));
    void this.probeUntilReady(boot);
  }

  private timeoutS(): number {
    return Math.round(this.opts.config.startupTimeoutMs / 1000);
  }

  private async probeUntilReady(boot: Boot): Promise<void> {
    const { endpoint } = this;
    const timeoutMs = this.opts.config.startupTimeoutMs;
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = AbortSignal.any([boot.abort.signal, deadline]);
    const interval = this.opts.probeIntervalMs ?? 500;
    const logEvery = this.opts.waitLogIntervalMs ?? 15_000;
    const began = this.now();
    let nextLog = began + logEvery;
    try {
      for (;;) {
        const result = await this.probe(endpoint, signal);
        if ('missing' in result) {
          if (result.missing.length > 0) return this.missingClasses(boot, result.missing);
          break;
        }
        boot.problem = result.problem;
        if (this.now() >= nextLog) {
          nextLog = this.now() + logEvery;
          this.log.info(`waiting for ComfyUI at ${endpoint.baseUrl} (${result.problem})`, {
            waitedS: Math.round((this.now() - began) / 1000),
            timeoutS: this.timeoutS(),
          });
        }
        await delay(interval, signal);
      }
      boot.state = 'ready';
      boot.readyAt = this.now();
      boot.problem = undefined;
      this.lastError = undefined;
      this.log.info('ComfyUI is ready', { baseUrl: endpoint.baseUrl });
      boot.resolve(endpoint);
    } catch {
      // only the deadline or this boot's end (exit, stop) get here: probe() absorbs every other failure
      if (deadline.aborted && !boot.abort.signal.aborted) {
        const last = boot.problem ?? 'no probe was answered';
        this.bootFailed(
          boot,
          'restart',
          `ComfyUI at ${endpoint.baseUrl} was not ready within ${this.timeoutS()} s${this.opts.config.names?.startupTimeout ? ` (${this.opts.config.names.startupTimeout})` : ''}; last problem: ${last}.`,
          { timeoutMs, lastError: last },
        );
      }
    }
  }

  /**
   * ComfyUI listens only after importing every custom node (main.py: init_extra_nodes, then the server),
   * so a class missing now stays missing: a broken image, which a restart does not mend.
   */
  private missingClasses(boot: Boot, missing: string[]): void {
    const { config } = this.opts;
    const report = describeMissingClasses(
      missing,
      this.opts.nodePacks ?? [],
      config.url ? {} : { comfyDir: config.dir, python: config.python },
    );
    this.bootFailed(boot, 'broken', report.message, { missingNodeClasses: missing, missingNodePacks: report.packs });
  }

  /**
   * One readiness probe: the missing node classes once ComfyUI answers, else what failed (not listening
   * yet, a request that failed or timed out, an answer it could not give). Throws only when `signal` ends.
   */
  private async probe(endpoint: ComfyEndpoint, signal: AbortSignal): Promise<{ missing: string[] } | { problem: string }> {
    const problem = await this.statsProblem(endpoint, signal);
    if (problem !== undefined) return { problem };
    const route = (cls: string) => `/object_info/${encodeURIComponent(cls)}`;
    let cls: string | undefined;
    try {
      const missing: string[] = [];
      for (cls of this.opts.requiredNodeClasses) {
        const r = await this.fetch(`${endpoint.baseUrl}${route(cls)}`, {
          signal: AbortSignal.any([signal, AbortSignal.timeout(OBJECT_INFO_TIMEOUT_MS)]),
        });
        if (!r.ok) {
          await r.body?.cancel();
          return { problem: `HTTP ${r.status} from ${route(cls)}` };
        }
        const body: unknown = await r.json();
        if (typeof body !== 'object' || body === null || !(cls in body)) missing.push(cls);
      }
      return { missing };
    } catch (err) {
      if (signal.aborted) throw err;
      const problem = `${route(cls ?? '')}: ${failureReason(err, OBJECT_INFO_TIMEOUT_MS)}`;
      this.log.debug('ComfyUI readiness probe failed; probing again', { problem, error: err });
      return { problem };
    }
  }

  /** Why GET /system_stats failed, or undefined when it answered 2xx. Throws only when `signal` ends. */
  private async statsProblem(endpoint: ComfyEndpoint, signal: AbortSignal): Promise<string | undefined> {
    try {
      const stats = await this.fetch(`${endpoint.baseUrl}/system_stats`, {
        signal: AbortSignal.any([signal, AbortSignal.timeout(STATS_TIMEOUT_MS)]),
      });
      await stats.body?.cancel();
      return stats.ok ? undefined : `HTTP ${stats.status} from /system_stats`;
    } catch (err) {
      if (signal.aborted) throw err;
      return failureReason(err, STATS_TIMEOUT_MS);
    }
  }

  /**
   * A boot that definitely failed. Waiters get the error; a spawned ComfyUI is killed, and its exit is
   * counted towards maxRestarts (`restart`) or, for a `broken` one, the supervisor turns unhealthy at once.
   * An external ComfyUI is left alone: the next ready() probes it again.
   */
  private bootFailed(boot: Boot, kind: 'restart' | 'broken', message: string, details: Record<string, unknown>): void {
    this.failBoot(boot, message, details);
    const child = this.child;
    if (this.opts.config.url || !child) return;
    if (kind === 'broken') {
      this.isHealthy = false;
      this.log.error('ComfyUI cannot work in this image; not restarting it (the worker should be refreshed)', details);
    }
    void this.terminate(child, 0);
  }

  private failBoot(boot: Boot, message: string, details: Record<string, unknown>): void {
    if (boot.state !== 'booting') return;
    boot.state = 'failed';
    boot.abort.abort();
    this.lastError = message.split('\n')[0];
    const quoted = this.lines?.quote();
    const err = unavailable(`${message}${quoted ? `\nLast ComfyUI output:\n${quoted}` : ''}`, details);
    this.log.error('ComfyUI did not become ready', { error: err });
    boot.reject(err);
  }

  // ---- exits and restarts -----------------------------------------------------------------------------

  private onExit(boot: Boot, child: ChildProcess | undefined, code: number | null, sig: NodeJS.Signals | null, err?: unknown): void {
    boot.abort.abort();
    if (this.stopping) {
      this.failBoot(boot, 'ComfyUI was stopped.', {});
      return;
    }
    const how = err
      ? `could not be started (${(err as Error).message})`
      : `exited with ${code !== null ? `code ${code}` : `signal ${sig}`}`;
    if (boot.state === 'ready') {
      const quoted = this.lines?.quote();
      const crash = comfyError('COMFY_CRASHED', `ComfyUI ${how} while running.${quoted ? `\nLast ComfyUI output:\n${quoted}` : ''}`, {
        details: { exitCode: code, signal: sig, pid: child?.pid },
      });
      this.lastError = `ComfyUI ${how} while running.`;
      this.log.error('ComfyUI crashed', { error: crash });
      for (const l of this.crashListeners) l(crash);
    } else {
      this.failBoot(boot, `ComfyUI ${how} during start-up.`, { exitCode: code, signal: sig });
    }
    if (!this.isHealthy) return; // given up on (a broken image): nothing to restart
    if (boot.readyAt !== undefined && this.now() - boot.readyAt >= (this.opts.stableAfterMs ?? 300_000)) this.failures = 0;
    this.failures += 1;
    const maxRestarts = this.opts.maxRestarts ?? 3;
    if (this.failures > maxRestarts) {
      this.isHealthy = false;
      this.log.error('ComfyUI keeps failing; not restarting it again (the worker should be refreshed)', { failures: this.failures });
      if (this.boot === boot && boot.state === 'ready') {
        this.failBoot(
          this.newBoot(),
          `ComfyUI failed ${this.failures} times in a row and is not restarted again; this worker needs replacing.`,
          { failures: this.failures },
        );
      }
      return;
    }
    const wait = backoffDelay(this.failures, {
      minDelayMs: this.opts.restartMinDelayMs ?? 1000,
      maxDelayMs: this.opts.restartMaxDelayMs ?? 30_000,
    });
    this.log.warn('restarting ComfyUI', { attempt: this.failures, delayMs: wait });
    const next = this.newBoot(); // ready() callers wait for the restart, not the dead process
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping || this.boot !== next) return;
      this.launch(next);
    }, wait);
  }

  private async shutdown(): Promise<void> {
    clearTimeout(this.restartTimer);
    const boot = this.boot;
    if (boot) this.failBoot(boot, 'ComfyUI was stopped.', {});
    if (this.child) await this.terminate(this.child, this.opts.stopGraceMs ?? 10_000);
  }

  /**
   * SIGTERM, then SIGKILL after `graceMs` (at once when 0). A process that outlives SIGKILL too (stuck in
   * the GPU driver) is given up on after killWaitMs, so it cannot hang the worker's exit; the supervisor
   * is then unhealthy, as nothing can be restarted beside it.
   */
  private async terminate(child: ChildProcess, graceMs: number): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const exitWithin = async (ms: number): Promise<boolean> => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
      const done = await Promise.race([exited.then(() => true as const), late]);
      clearTimeout(timer);
      return done;
    };
    if (graceMs > 0) {
      child.kill('SIGTERM');
      if (await exitWithin(graceMs)) {
        this.log.info('ComfyUI stopped');
        return;
      }
      this.log.warn('ComfyUI ignored SIGTERM; killing it', { graceMs });
    }
    child.kill('SIGKILL');
    const killWaitMs = this.opts.killWaitMs ?? 5000;
    if (await exitWithin(killWaitMs)) {
      this.log.info('ComfyUI killed');
      return;
    }
    this.isHealthy = false;
    this.log.error('ComfyUI did not exit after SIGKILL (stuck in the GPU driver?); leaving it (the worker should be refreshed)', {
      pid: child.pid,
      killWaitMs,
    });
  }
}

/**
 * A probe's failure in a few words: the errno undici hides under `cause` ("fetch failed" says nothing),
 * "no answer within N s" for a timeout, else the message.
 */
export function failureReason(err: unknown, timeoutMs: number): string {
  const e = err as { name?: unknown; message?: unknown; code?: unknown; cause?: { code?: unknown; message?: unknown } };
  if (e.name === 'TimeoutError') return `no answer within ${Math.round(timeoutMs / 1000)} s`;
  const code = e.cause?.code ?? e.code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
  const message = e.cause?.message ?? e.message;
  return typeof message === 'string' && message ? message : String(err);
}

function unavailable(message: string, details: Record<string, unknown> = {}): WorkerError {
  return comfyError('COMFY_UNAVAILABLE', message, { details });
}
