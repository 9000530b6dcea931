// dist/handler.cjs (handler/launcher.cjs) as the image runs it: built by scripts/build.mjs, started as a
// child process. It must refuse an old Node with one clear line before the bundle is parsed, start
// the worker on a new one, and fill the compile cache when the image build loads it as a module.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile, execFileSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

let tmp: string;
let launcher: string;

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'launcher-'));
  launcher = path.join(tmp, 'dist', 'handler.cjs');
  await run(process.execPath, [path.join(root, 'scripts/build.mjs'), '--outfile', launcher]);
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function launch(node: string, args: string[], env: Record<string, string> = {}): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run(node, args, { cwd: tmp, env: { PATH: process.env.PATH ?? '', ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A Node older than 22.12 on this machine (npm scripts put the project's Node 22 first on PATH). */
function olderNode(): { node: string; version: string } | undefined {
  const candidates = [...(process.env.PATH ?? '').split(':').map((d) => path.join(d, 'node')), '/usr/bin/node', '/usr/local/bin/node'];
  for (const node of candidates) {
    try {
      accessSync(node, constants.X_OK);
      const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
      const [major, minor] = version.slice(1).split('.').map(Number) as [number, number];
      if (major < 22 || (major === 22 && minor < 12)) return { node, version };
    } catch {
      // not there, or not runnable
    }
  }
  return undefined;
}

/** Preloaded with -r: this Node reports another version to everything after it. */
function fakeVersion(version: string): string {
  const file = path.join(tmp, `fake-${version}.cjs`);
  writeFileSync(
    file,
    `Object.defineProperty(process, 'version', { value: 'v${version}' });\nObject.defineProperty(process.versions, 'node', { value: '${version}' });\n`,
  );
  return file;
}

describe('dist/handler.cjs', () => {
  const older = olderNode();
  (older ? it : it.skip)(
    `refuses the older Node on this machine (${older?.version ?? 'none found'}) with one line and exit 1`,
    async () => {
      const outcome = await launch(older!.node, [launcher, '--test_input', '{"input":{}}']);
      expect(outcome).toEqual({ code: 1, stdout: '', stderr: `steadydancer-worker needs Node >= 22.12, found ${older!.version}\n` });
    },
  );

  it('refuses any version below 22.12 before the bundle runs, and starts the bundle from 22.12 on', async () => {
    for (const version of ['18.20.4', '20.20.2', '22.11.0']) {
      const outcome = await launch(process.execPath, ['-r', fakeVersion(version), launcher]);
      expect(outcome).toEqual({ code: 1, stdout: '', stderr: `steadydancer-worker needs Node >= 22.12, found v${version}\n` });
    }
    // Past the guard the bundle runs: a bad setting is reported by the worker's own config check.
    for (const version of ['22.12.0', '24.1.0']) {
      const outcome = await launch(process.execPath, ['-r', fakeVersion(version), launcher], { JOB_TIMEOUT_S: 'soon' });
      expect(outcome).toMatchObject({ code: 1, stderr: expect.stringContaining('CONFIG_INVALID: Invalid environment: JOB_TIMEOUT_S') });
    }
  });

  it('loaded as a module (the image build), compiles the bundle into the cache beside it without starting the worker', async () => {
    const cacheDir = path.join(path.dirname(launcher), '.compile-cache');
    rmSync(cacheDir, { recursive: true, force: true });
    const warm = await launch(process.execPath, ['-e', `require(${JSON.stringify(launcher)})`]);
    expect(warm).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(readdirSync(cacheDir, { recursive: true }).length).toBeGreaterThan(1);
    // The next start reads the bundle's compiled code from there (Node's own trace of its cache).
    const started = await launch(process.execPath, [launcher], { JOB_TIMEOUT_S: 'soon', NODE_DEBUG_NATIVE: 'COMPILE_CACHE' });
    expect(started.stderr).toMatch(/cache for \S+handler-main\.cjs was accepted/);
  });
});
