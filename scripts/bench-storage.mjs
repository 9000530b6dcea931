// Bundles bench/storage.ts into a temp .cjs and runs it on this Node (npm scripts run on Node 22).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-build-'));
try {
  const outfile = path.join(dir, 'storage.cjs');
  await build({ entryPoints: ['bench/storage.ts'], outfile, bundle: true, platform: 'node', target: 'node22', format: 'cjs', logLevel: 'warning' });
  const { status } = spawnSync(process.execPath, [outfile], { stdio: 'inherit' });
  process.exitCode = status ?? 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
