// Pythons with packages of the image's lock (versions from workflows/python-constraints.txt, from PyPI):
// NumPy, OpenCV and Pillow for the ComfyUI hook's tests, NumPy and ml_dtypes for the builder's model
// derivation. Each is a cached venv, built once per machine and package set, beside and then renamed into
// place, so an interrupted install is never taken for a finished one.
import { expect } from '@jest/globals';
import { existsSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readLock, run } from '../image/helpers';

export function hookPython(): Promise<string> {
  return lockedPython('hook-py', ['numpy', 'opencv-python-headless', 'pillow']);
}

export function builderPython(): Promise<string> {
  return lockedPython('builder-py', ['numpy', 'ml-dtypes']);
}

async function lockedPython(name: string, names: string[]): Promise<string> {
  const lock = readLock();
  const cache =
    process.env.STEADYDANCER_CACHE_DIR ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'steadydancer-worker');
  const packages = names.map((p) => `${p}==${lock.get(p)}`);
  const venv = path.join(cache, `${name}-${packages.join('-').replace(/[=]+/g, '')}`);
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
  try {
    renameSync(building, venv);
  } catch (err) {
    // Another test file's worker built the same venv first (suites run in parallel): use that one.
    if (!existsSync(python)) throw err;
    rmSync(building, { recursive: true, force: true });
  }
  return python;
}

/** Python that loads the hook module at sys.argv[1] as `alias` and collects the hook's log messages in `records`. */
export function loadHookModule(name: string, alias: string): string {
  return [
    'import importlib.util, logging, sys',
    `spec = importlib.util.spec_from_file_location("${name}", sys.argv[1])`,
    `${alias} = importlib.util.module_from_spec(spec); spec.loader.exec_module(${alias})`,
    'records = []',
    'class Capture(logging.Handler):',
    '    def emit(self, r): records.append(r.getMessage())',
    'log = logging.getLogger("steadydancer_runtime"); log.addHandler(Capture()); log.setLevel(logging.INFO)',
  ].join('\n');
}
