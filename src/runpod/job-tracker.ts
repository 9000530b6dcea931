// The jobs in flight, whichever mode runs them (production's take loop, the local API's queue):
// one AbortController per job, cancel one or all, wait for a free slot, and drain with a grace
// period after which the rest are aborted (BullMQ's LockManager trackJob / cancelJob, and its
// close()). The heartbeat hears the ids of the jobs still worth pinging for.

interface InFlight {
  readonly controller: AbortController;
  /** Cancelled: still running (its slot stays busy until it settles) but no longer reported. */
  cancelled: boolean;
  done: Promise<void>;
}

export class JobTracker {
  private readonly jobs = new Map<string, InFlight>();
  private readonly slotWaiters = new Set<() => void>();

  /** `onChange` hears the ids of the running, not cancelled jobs whenever that set changes. */
  constructor(private readonly onChange?: (ids: string[]) => void) {}

  get size(): number {
    return this.jobs.size;
  }

  has(id: string): boolean {
    return this.jobs.has(id);
  }

  /** Runs `work` as job `id` with its own abort signal; it is untracked once `work` settles. */
  track(id: string, work: (signal: AbortSignal) => Promise<void>): Promise<void> {
    const entry: InFlight = { controller: new AbortController(), cancelled: false, done: Promise.resolve() };
    this.jobs.set(id, entry);
    this.changed();
    entry.done = work(entry.controller.signal).finally(() => {
      this.jobs.delete(id);
      this.changed();
      for (const wake of [...this.slotWaiters]) wake();
    });
    return entry.done;
  }

  /** Aborts job `id` with `reason` (`announce` runs just before); nothing when it is not running or was cancelled already. */
  cancel(id: string, reason: Error, announce?: () => void): void {
    const entry = this.jobs.get(id);
    if (!entry || entry.cancelled) return;
    entry.cancelled = true;
    announce?.();
    entry.controller.abort(reason);
    this.changed();
  }

  isCancelled(id: string): boolean {
    return this.jobs.get(id)?.cancelled ?? false;
  }

  /** Resolves once fewer than `limit` jobs run, or when `signal` aborts. */
  waitForSlot(limit: number, signal: AbortSignal): Promise<void> {
    if (this.jobs.size < limit || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.slotWaiters.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.slotWaiters.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /**
   * Waits for every job in flight now; those still running after `graceMs` are aborted with
   * `reason(id)` (`onAbort` hears each first).
   */
  async drain(graceMs: number, reason: (id: string) => Error, onAbort?: (id: string) => void): Promise<void> {
    const inFlight = [...this.jobs.entries()];
    const timer = setTimeout(() => {
      for (const [id, entry] of inFlight) {
        if (!this.jobs.has(id)) continue;
        onAbort?.(id);
        entry.controller.abort(reason(id));
      }
    }, graceMs);
    await Promise.all(inFlight.map(([, entry]) => entry.done));
    clearTimeout(timer);
  }

  private changed(): void {
    this.onChange?.([...this.jobs.entries()].filter(([, e]) => !e.cancelled).map(([id]) => id));
  }
}
