// A Python with the image's NumPy, OpenCV and Pillow (versions from the lock, from PyPI) for the ComfyUI
// hook's tests, in a cached venv: built once per machine and package set, beside and then renamed into
// place, so an interrupted install is never taken for a finished one.
import { expect } from '@jest/globals';
import { existsSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readLock, run } from '../image/helpers';

export async function hookPython(): Promise<string> {
  const lock = readLock();
  const cache =
    process.env.STEADYDANCER_CACHE_DIR ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'steadydancer-worker');
  const packages = ['numpy', 'opencv-python-headless', 'pillow'].map((p) => `${p}==${lock.get(p)}`);
  const venv = path.join(cache, `hook-py-${packages.join('-').replace(/[=]+/g, '')}`);
  const python = path.join(venv, 'bin', 'python');
  if (existsSync(python)) return python;
  const building = `${venv}.${process.pid}`;
  rmSync(building, { recursive: true, force: true });
  const made = await run('python3', ['-m', 'venv', building], { timeoutMs: 120_000 });
  expect(made.stderr).toBe('');
  const pip = await run(
    path.join(building, 'bin', 'python'),
    ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--only-binary=:all:', ...packages],
    { timeoutMs: 600_000 },
  );
  expect({ code: pip.code, stderr: pip.stderr }).toEqual({ code: 0, stderr: '' });
  renameSync(building, venv);
  return python;
}
