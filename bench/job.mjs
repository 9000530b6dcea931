// `npm run bench:job`: bundles bench/job.ts (packages left external) into a folder inside the checkout,
// so it resolves node_modules like the sources do, and runs it on this Node (npm scripts run on Node 22).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

mkdirSync('.cache', { recursive: true });
const dir = mkdtempSync(path.join('.cache', 'bench-job-'));
try {
  const outfile = path.join(dir, 'job.mjs');
  await build({
    entryPoints: ['bench/job.ts'],
    outfile,
    bundle: true,
    packages: 'external',
    platform: 'node',
    target: 'node22',
    format: 'esm',
    logLevel: 'warning',
  });
  const { status } = spawnSync(process.execPath, [outfile], { stdio: 'inherit' });
  process.exitCode = status ?? 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
