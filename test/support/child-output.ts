import type { ChildProcess } from 'node:child_process';

export interface ChildOutput {
  /** Everything the child printed so far (stdout and stderr, interleaved as they arrived). */
  text(): string;
  /** Resolves once `text` has appeared; rejects after `timeoutMs` quoting the output's tail. */
  waitFor(text: string, timeoutMs: number): Promise<void>;
}

/** Collects a spawned child's output and lets tests await a line instead of sleeping. */
export function collectOutput(child: ChildProcess): ChildOutput {
  let out = '';
  const waiters = new Set<() => void>();
  const onData = (d: Buffer): void => {
    out += d.toString();
    for (const w of [...waiters]) w();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  return {
    text: () => out,
    waitFor: (text, timeoutMs) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (!out.includes(text)) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no "${text}" in the child's output within ${timeoutMs} ms:\n${out.slice(-4000)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
  };
}
