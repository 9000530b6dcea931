// `npm run bench:runtime`: bundles the bench worker and driver with esbuild into a temp dir, runs the driver.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-runtime-'));
try {
  const common = { bundle: true, platform: 'node', target: 'node22', logLevel: 'warning' };
  await build({ ...common, entryPoints: ['bench/runtime-worker.ts'], outfile: path.join(dir, 'worker.cjs'), format: 'cjs', minify: true });
  await build({ ...common, entryPoints: ['bench/runtime.ts'], outfile: path.join(dir, 'driver.mjs'), format: 'esm' });
  const run = spawnSync(process.execPath, [path.join(dir, 'driver.mjs'), path.join(dir, 'worker.cjs')], { stdio: 'inherit' });
  process.exitCode = run.status ?? 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
