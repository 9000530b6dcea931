// Shared helpers for the image tests: repo paths, manifest types, running repo scripts.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export const read = (rel: string): string => readFileSync(path.join(ROOT, rel), 'utf8');
export const readJson = <T>(rel: string): T => JSON.parse(read(rel)) as T;

export interface ModelEntry {
  id: string;
  folder: string;
  path: string;
  /** Absent for a file the build derives from other entries (builder/derive_model.py). */
  source?: { hf_repo: string; hf_path: string; revision?: string };
  derive?: { recipe: string; base: string; lora: string; strength: number };
  bytes: number | null;
  sha256: string | null;
  precisions: string[];
  variants: string[];
}
export interface ModelManifest {
  files: ModelEntry[];
}
export interface Pins {
  comfyui: { repo: string; ref?: string; commit: string };
  custom_nodes: { name: string; repo: string; commit: string }[];
  python: {
    version: string;
    cuda: string;
    replace: Record<string, string>;
    extra_requirements: string[];
    sageattention: { version: string; repo: string; commit: string };
  };
  gpu: { arch_list: string };
}

/** PEP 503 normalised project name. */
export const canonical = (name: string): string => name.replace(/[-_.]+/g, '-').toLowerCase();

/** workflows/python-constraints.txt as {canonical name: version}, in file order. */
export function readLock(): Map<string, string> {
  const lock = new Map<string, string>();
  for (const raw of read('workflows/python-constraints.txt').split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const m = /^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)$/.exec(line);
    if (!m) throw new Error(`python-constraints.txt: not 'name==version': ${raw}`);
    lock.set(canonical(m[1]!), m[2]!);
  }
  return lock;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program with a deadline; resolves with its exit code instead of throwing on failure. */
export function run(
  file: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 20_000, maxBuffer: 8 << 20 },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') {
          reject(new Error(`${file} ${args.join(' ')} did not finish: ${err.message}\n${stderr}`));
          return;
        }
        resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
      },
    );
  });
}
