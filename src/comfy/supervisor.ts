// Runs ComfyUI as a child process (or attaches to one at COMFYUI_URL): boot, readiness, tagged logs,
// crash detection with bounded restarts, clean shutdown. Readiness is a promise the job pipeline awaits,
// so work that does not need ComfyUI (fetching inputs) overlaps the boot.
import { spawn as nodeSpawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import type { ComfyConfig } from '../config';
import { delay } from '../lib/delay';
import { WorkerError } from '../lib/errors';
import type { Logger } from '../lib/logger';
import { backoffDelay } from '../lib/retry';
import { comfyArgs, comfyLayout } from './args';
import type { ComfyEndpoint } from './endpoint';
import { OutputLines } from './output-lines';

export interface ComfySupervisorOptions {
  config: ComfyConfig;
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
}

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

  /** False once ComfyUI failed more than maxRestarts times in a row: the worker should be refreshed. */
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
      while (!(await this.answers(endpoint, signal))) await delay(interval, signal);
      const missing = await this.missingClasses(endpoint, signal);
      if (missing.length > 0) {
        this.failBoot(boot, `ComfyUI started without the node classes ${missing.join(', ')}: their custom node packs are missing or failed to import.`, { missingNodeClasses: missing });
        return;
      }
      boot.state = 'ready';
      boot.readyAt = this.now();
      this.log.info('ComfyUI is ready', { baseUrl: endpoint.baseUrl });
      boot.resolve(endpoint);
    } catch (err) {
      if (boot.state !== 'booting') return;
      if (deadline.aborted && !boot.abort.signal.aborted) {
        this.failBoot(boot, `ComfyUI was not ready within ${Math.round(timeoutMs / 1000)} s (COMFYUI_STARTUP_TIMEOUT_S).`, { timeoutMs });
        // a hung boot is killed; the exit handler counts it and restarts
        this.child?.kill('SIGKILL');
      } else if (!boot.abort.signal.aborted) {
        this.failBoot(boot, `ComfyUI readiness check failed: ${(err as Error).message}`, {});
      }
    }
  }

  private async answers(endpoint: ComfyEndpoint, signal: AbortSignal): Promise<boolean> {
    try {
      const r = await this.fetch(`${endpoint.baseUrl}/system_stats`, { signal: AbortSignal.any([signal, AbortSignal.timeout(5000)]) });
      await r.body?.cancel();
      return r.ok;
    } catch (err) {
      if (signal.aborted) throw err;
      return false;
    }
  }

  private async missingClasses(endpoint: ComfyEndpoint, signal: AbortSignal): Promise<string[]> {
    const missing: string[] = [];
    for (const cls of this.opts.requiredNodeClasses) {
      const r = await this.fetch(`${endpoint.baseUrl}/object_info/${encodeURIComponent(cls)}`, { signal: AbortSignal.any([signal, AbortSignal.timeout(30_000)]) });
      const body = r.ok ? ((await r.json()) as Record<string, unknown>) : {};
      if (!(cls in body)) missing.push(cls);
    }
    return missing;
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
    if (boot.readyAt !== undefined && this.now() - boot.readyAt >= (this.opts.stableAfterMs ?? 300_000)) this.failures = 0;
    this.failures += 1;
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
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const grace = this.opts.stopGraceMs ?? 10_000;
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      this.log.warn('ComfyUI ignored SIGTERM; killing it', { graceMs: grace });
      child.kill('SIGKILL');
    }, grace);
    await exited;
    clearTimeout(timer);
    this.log.info('ComfyUI stopped');
  }
}

function unavailable(message: string, details: Record<string, unknown> = {}): WorkerError {
  return new WorkerError('COMFY_UNAVAILABLE', message, { details });
}
