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
import { OutputLines } from './output-lines';

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
}

export interface ComfySupervisorOptions {
  config: ComfySettings;
  workDir: string;
  /** Node classes every workflow needs; readiness fails naming the ones /object_info lacks. */
  requiredNodeClasses: readonly string[];
  logger: Logger;
  spawn?: typeof nodeSpawn;
  fetch?: typeof fetch;
  now?: () => number;
  /** Pause between readiness probes. Default 500 ms. */
  probeIntervalMs?: number;
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

interface Boot {
  state: BootState;
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
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly crashListeners = new Set<(err: WorkerError) => void>();
  private readonly spawn: typeof nodeSpawn;
  private readonly fetch: typeof fetch;
  private readonly now: () => number;
  private readonly log: Logger;

  constructor(private readonly opts: ComfySupervisorOptions) {
    this.spawn = opts.spawn ?? nodeSpawn;
    this.fetch = opts.fetch ?? globalThis.fetch;
    this.now = opts.now ?? Date.now;
    this.log = opts.logger.child({ component: 'comfy-supervisor' });
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

  /** Resolves when ComfyUI answers and has every required node class; rejects COMFY_UNAVAILABLE. */
  ready(signal?: AbortSignal): Promise<ComfyEndpoint> {
    if (this.stopping) return Promise.reject(unavailable('ComfyUI is shutting down.'));
    this.start();
    if (this.opts.config.url && this.boot?.state === 'failed') this.attach(); // external: probe again
    const boot = this.boot!;
    if (!signal) return boot.promise;
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      boot.promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
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

  private attach(): void {
    const boot = this.newBoot();
    const endpoint: ComfyEndpoint = { baseUrl: this.opts.config.url!.replace(/\/+$/, '') };
    this.log.info('Using the running ComfyUI at COMFYUI_URL', { url: endpoint.baseUrl });
    void this.probeUntilReady(boot, endpoint);
  }

  /** Spawns ComfyUI for `boot` (a restart passes the boot its waiters already hold). */
  private launch(boot: Boot = this.newBoot()): void {
    const { config } = this.opts;
    const layout = comfyLayout(this.opts.workDir);
    for (const dir of Object.values(layout)) mkdirSync(dir, { recursive: true });
    const modelPaths = config.extraModelPathsConfig && existsSync(config.extraModelPathsConfig) ? config.extraModelPathsConfig : undefined;
    // -u: unbuffered, so ComfyUI's lines reach our logs (and a boot error) as they are printed
    const args = ['-u', ...comfyArgs({ port: config.port, layout, extraModelPathsConfig: modelPaths, extraArgs: config.extraArgs })];
    this.log.info('Starting ComfyUI', { python: config.python, dir: config.dir, args });
    const lines = new OutputLines(this.opts.logger.child({ component: 'comfyui' }));
    this.lines = lines;
    let child: ChildProcess;
    try {
      child = this.spawn(config.python, args, { cwd: config.dir, stdio: ['ignore', 'pipe', 'pipe'] });
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
    const endpoint: ComfyEndpoint = { baseUrl: `http://127.0.0.1:${config.port}`, ...layout };
    void this.probeUntilReady(boot, endpoint);
  }

  private async probeUntilReady(boot: Boot, endpoint: ComfyEndpoint): Promise<void> {
    const timeoutMs = this.opts.config.startupTimeoutMs;
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = AbortSignal.any([boot.abort.signal, deadline]);
    const interval = this.opts.probeIntervalMs ?? 500;
    try {
      let missing: string[] | undefined;
      while (!(missing = await this.probe(endpoint, signal))) await delay(interval, signal);
      if (missing.length > 0) {
        // ComfyUI listens only after importing every custom node (main.py: init_extra_nodes, then the
        // server), so a class missing now stays missing: a broken image, which a restart does not mend.
        this.bootFailed(boot, 'broken', `ComfyUI started without the node classes ${missing.join(', ')}: their custom node packs are missing or failed to import.`, { missingNodeClasses: missing });
        return;
      }
      boot.state = 'ready';
      boot.readyAt = this.now();
      this.log.info('ComfyUI is ready', { baseUrl: endpoint.baseUrl });
      boot.resolve(endpoint);
    } catch {
      // only the deadline or this boot's end (exit, stop) get here: probe() absorbs every other failure
      if (deadline.aborted && !boot.abort.signal.aborted) {
        this.bootFailed(boot, 'restart', `ComfyUI was not ready within ${Math.round(timeoutMs / 1000)} s (COMFYUI_STARTUP_TIMEOUT_S).`, { timeoutMs });
      }
    }
  }

  /**
   * One readiness probe: the missing node classes once ComfyUI answers, undefined while it does not
   * (not listening yet, a request that failed or timed out, an answer it could not give). Throws only
   * when `signal` ends.
   */
  private async probe(endpoint: ComfyEndpoint, signal: AbortSignal): Promise<string[] | undefined> {
    try {
      const stats = await this.fetch(`${endpoint.baseUrl}/system_stats`, { signal: AbortSignal.any([signal, AbortSignal.timeout(STATS_TIMEOUT_MS)]) });
      await stats.body?.cancel();
      if (!stats.ok) return undefined;
      const missing: string[] = [];
      for (const cls of this.opts.requiredNodeClasses) {
        const r = await this.fetch(`${endpoint.baseUrl}/object_info/${encodeURIComponent(cls)}`, { signal: AbortSignal.any([signal, AbortSignal.timeout(OBJECT_INFO_TIMEOUT_MS)]) });
        if (!r.ok) {
          await r.body?.cancel();
          return undefined;
        }
        const body: unknown = await r.json();
        if (typeof body !== 'object' || body === null || !(cls in body)) missing.push(cls);
      }
      return missing;
    } catch (err) {
      if (signal.aborted) throw err;
      this.log.debug('ComfyUI readiness probe failed; probing again', { error: err });
      return undefined;
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
    const how = err ? `could not be started (${(err as Error).message})` : `exited with ${code !== null ? `code ${code}` : `signal ${sig}`}`;
    if (boot.state === 'ready') {
      const quoted = this.lines?.quote();
      const crash = new WorkerError('COMFY_CRASHED', `ComfyUI ${how} while running.${quoted ? `\nLast ComfyUI output:\n${quoted}` : ''}`, {
        details: { exitCode: code, signal: sig, pid: child?.pid },
      });
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
        this.failBoot(this.newBoot(), `ComfyUI failed ${this.failures} times in a row and is not restarted again; this worker needs replacing.`, { failures: this.failures });
      }
      return;
    }
    const wait = backoffDelay(this.failures, { minDelayMs: this.opts.restartMinDelayMs ?? 1000, maxDelayMs: this.opts.restartMaxDelayMs ?? 30_000 });
    this.log.warn('Restarting ComfyUI', { attempt: this.failures, delayMs: wait });
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
    this.log.error('ComfyUI did not exit after SIGKILL (stuck in the GPU driver?); leaving it (the worker should be refreshed)', { pid: child.pid, killWaitMs });
  }
}

function unavailable(message: string, details: Record<string, unknown> = {}): WorkerError {
  return new WorkerError('COMFY_UNAVAILABLE', message, { details });
}
