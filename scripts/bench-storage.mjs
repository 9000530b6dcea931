// Bundles a storage bench (bench/storage.ts by default, or bench/<name>.ts) into a temp .cjs and
// runs it on this Node (npm scripts run on Node 22). The bench may re-run its bundle as a child.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';

const name = process.argv[2] ?? 'storage';
const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-build-'));
try {
  const outfile = path.join(dir, `${name}.cjs`);
  await build({
    entryPoints: [`bench/${name}.ts`],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    logLevel: 'warning',
  });
  const { status } = spawnSync(process.execPath, [outfile, ...process.argv.slice(3)], { stdio: 'inherit' });
  process.exitCode = status ?? 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
