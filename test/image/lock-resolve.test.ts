// The lock resolves: pip, asked for every package of workflows/python-constraints.txt at its pinned version
// as binary wheels for the image's CPython (pins.json python.version) on manylinux x86_64, finds a consistent
// set in which nothing else is needed. This proves each pin's own requirements (torchvision/torchaudio pin
// torch exactly, torch pins its nvidia-* and triton, ...) are met by the other pins and that no dependency
// floats. Needs PyPI (CI has it); pip reads the wheels' metadata (PEP 658), it installs nothing.
import { describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, canonical, readJson, readLock, run, type Pins } from './helpers';

const pins = readJson<Pins>('workflows/pins.json');
const lock = readLock();
const LOCK_FILE = path.join(ROOT, 'workflows/python-constraints.txt');

/** Every manylinux tag an x86_64 wheel can carry up to the image's glibc (Ubuntu 24.04: 2.39). Some
 * packages ship only old tags (tokenizers: manylinux_2_17 only), so all of them are offered. */
const PLATFORMS = [
  ...Array.from({ length: 35 }, (_, i) => `manylinux_2_${i + 5}_x86_64`),
  'manylinux2014_x86_64',
  'manylinux2010_x86_64',
  'manylinux1_x86_64',
  'linux_x86_64',
];

/** A venv with the lock's pip (newer pips read wheel metadata without downloading wheels), kept in the
 * user cache so fresh clones (CI) reuse it. */
async function resolverPip(): Promise<string> {
  const cache =
    process.env.STEADYDANCER_CACHE_DIR ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'steadydancer-worker');
  const venv = path.join(cache, `pip-resolve-${lock.get('pip')}`);
  const pip = path.join(venv, 'bin', 'pip');
  if (!existsSync(pip)) {
    const made = await run('python3', ['-m', 'venv', venv], { timeoutMs: 120_000 });
    expect(made.stderr).toBe('');
    const up = await run(
      path.join(venv, 'bin', 'python'),
      ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', `pip==${lock.get('pip')}`],
      { timeoutMs: 300_000 },
    );
    expect({ code: up.code, stderr: up.stderr }).toEqual({ code: 0, stderr: '' });
  }
  return pip;
}

describe('the lock resolves from PyPI for the image’s Python on manylinux x86_64', () => {
  it('to exactly itself: every requirement met, nothing unpinned pulled in', async () => {
    const pip = await resolverPip();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sd-resolve-'));
    try {
      const report = path.join(dir, 'report.json');
      const pyver = pins.python.version.replace('.', '');
      const r = await run(
        pip,
        [
          'install',
          '--dry-run',
          '--ignore-installed',
          '--quiet',
          '--disable-pip-version-check',
          '--report',
          report,
          '--target',
          path.join(dir, 'target'),
          '--only-binary=:all:',
          '--python-version',
          pins.python.version,
          '--implementation',
          'cp',
          '--abi',
          `cp${pyver}`,
          ...PLATFORMS.flatMap((p) => ['--platform', p]),
          '-r',
          LOCK_FILE,
          '-c',
          LOCK_FILE,
        ],
        { timeoutMs: 540_000, env: { ...process.env, PIP_FIND_LINKS: '' } },
      );
      expect({ code: r.code, stderr: r.stderr.split('\n').filter((l) => /ERROR/.test(l)) }).toEqual({ code: 0, stderr: [] });
      const installed = (JSON.parse(readFileSync(report, 'utf8')) as { install: { metadata: { name: string; version: string } }[] })
        .install;
      const resolved = Object.fromEntries(installed.map((i) => [canonical(i.metadata.name), i.metadata.version]));
      expect(resolved).toEqual(Object.fromEntries(lock));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 600_000);
});
