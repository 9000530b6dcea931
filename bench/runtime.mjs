// `npm run bench:runtime`: builds the worker as the image does (scripts/build.mjs into a temp dist/, then
// the compile-cache warm-up the Dockerfile runs), bundles the driver bench/runtime.ts (packages left
// external, inside the checkout so node_modules resolve) and runs it on this Node (npm scripts: Node 22).
// Results go to bench/results/runtime.json (BENCH_RESULTS=<file> elsewhere).
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { inBenchDir, runBundled } from './bundled.mjs';

process.exitCode = await inBenchDir('runtime', (dir) => {
  const launcher = path.resolve(dir, 'dist', 'handler.cjs');
  execFileSync(process.execPath, ['scripts/build.mjs', '--outfile', launcher], { stdio: 'inherit' });
  // the Dockerfile's warm-up: loading the launcher as a module compiles the bundle into the cache.
  execFileSync(process.execPath, ['-e', `require(${JSON.stringify(launcher)})`], { stdio: 'inherit' });
  const results = path.resolve(process.env.BENCH_RESULTS ?? 'bench/results/runtime.json');
  return runBundled('bench/runtime.ts', dir, [launcher, results]);
});
