// scripts/lazy-packages.mjs: a package imported from our sources loads when one of its exports is
// first read, not when the bundle starts; what the importer sees is the package's own exports.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
// @ts-expect-error -- a plain .mjs build script, no type declarations
import { lazyPackages } from '../../scripts/lazy-packages.mjs';

let root: string;

beforeAll(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'lazy-packages-'));
  const pkg = path.join(root, 'node_modules', 'counted');
  mkdirSync(pkg, { recursive: true });
  writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'counted', main: 'index.js' }));
  // Counts its loads in a global, the way a package's start-up cost would show.
  writeFileSync(
    path.join(pkg, 'index.js'),
    `globalThis.countedLoads = (globalThis.countedLoads || 0) + 1;
Object.defineProperty(exports, '__esModule', { value: true });
exports.answer = 42;
exports.Thing = class Thing { constructor() { this.made = true; } };`,
  );
  writeFileSync(
    path.join(root, 'entry.ts'),
    `import { answer, Thing } from 'counted';
export const loadsBefore = (): number => (globalThis as { countedLoads?: number }).countedLoads ?? 0;
export const use = (): unknown[] => [answer, new Thing(), answer];`,
  );
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

async function bundle(lazy: boolean): Promise<string> {
  const outfile = path.join(root, `out-${lazy ? 'lazy' : 'eager'}.cjs`);
  await build({
    entryPoints: [path.join(root, 'entry.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    logLevel: 'error',
    plugins: lazy ? [lazyPackages(['counted'], root)] : [],
  });
  return outfile;
}

function run(file: string): unknown {
  const script = `const m = require(${JSON.stringify(file)}); const before = m.loadsBefore(); const used = m.use(); console.log(JSON.stringify({ before, used, after: globalThis.countedLoads }));`;
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }));
}

describe('lazyPackages', () => {
  it('loads the package at the first read of an export, once, with its own values', async () => {
    expect(run(await bundle(true))).toEqual({ before: 0, used: [42, { made: true }, 42], after: 1 });
  });

  it('differs from a plain bundle only in when the package loads', async () => {
    expect(run(await bundle(false))).toEqual({ before: 1, used: [42, { made: true }, 42], after: 1 });
  });
});
