// `npm run bench:runtime`: builds the worker as the image does (scripts/build.mjs into a temp dist/, then
// the compile-cache warm-up the Dockerfile runs), bundles the driver bench/runtime.ts (packages left
// external, inside the checkout so node_modules resolve) and runs it on this Node (npm scripts: Node 22).
// Results go to bench/results/runtime.json (BENCH_RESULTS=<file> elsewhere).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

mkdirSync('.cache', { recursive: true });
const dir = mkdtempSync(path.join('.cache', 'bench-runtime-'));
try {
  const launcher = path.resolve(dir, 'dist', 'handler.cjs');
  execFileSync(process.execPath, ['scripts/build.mjs', '--outfile', launcher], { stdio: 'inherit' });
  // the Dockerfile's warm-up: loading the launcher as a module compiles the bundle into the cache.
  execFileSync(process.execPath, ['-e', `require(${JSON.stringify(launcher)})`], { stdio: 'inherit' });
  const driver = path.join(dir, 'runtime.mjs');
  await build({
    entryPoints: ['bench/runtime.ts'],
    outfile: driver,
    bundle: true,
    packages: 'external',
    platform: 'node',
    target: 'node22',
    format: 'esm',
    logLevel: 'warning',
  });
  const results = path.resolve(process.env.BENCH_RESULTS ?? 'bench/results/runtime.json');
  const { status } = spawnSync(process.execPath, [driver, launcher, results], { stdio: 'inherit' });
  process.exitCode = status ?? 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
