// Runs a TypeScript bench driver: bundled by esbuild (packages left external) into a temp folder inside
// the checkout, so it resolves node_modules like the sources do, and run on this Node (npm scripts run on
// Node 22). `bench/job.mjs` and `bench/runtime.mjs` are its callers.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

/** Calls `work(dir)` with a fresh `.cache/bench-<name>-*` folder, removed afterwards. */
export async function inBenchDir(name, work) {
  mkdirSync('.cache', { recursive: true });
  const dir = mkdtempSync(path.join('.cache', `bench-${name}-`));
  try {
    return await work(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Bundles `entry` into `dir` and runs it with `args`; resolves its exit status. */
export async function runBundled(entry, dir, args = []) {
  const outfile = path.join(dir, `${path.basename(entry, '.ts')}.mjs`);
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    packages: 'external',
    platform: 'node',
    target: 'node22',
    format: 'esm',
    logLevel: 'warning',
  });
  return spawnSync(process.execPath, [outfile, ...args], { stdio: 'inherit' }).status ?? 1;
}
