// What the end-to-end tests (and bench/job.ts) run the product against: the production bundle built
// by scripts/build.mjs into a temp dir, a ComfyUI "checkout" whose main.py is the bundled stand-in
// (test/fakes/comfyui-process.ts) started through a python wrapper that execs node, placeholder model
// files, a loopback server for the job's inputs, and the worker as a child process.
import { execFile, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createReadStream } from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { MODEL_FILES } from '../../src/workflow';
import { collectOutput } from '../support/child-output';
import { lavfiInput } from '../media/fixtures';

const require = createRequire(import.meta.url);
export const ffmpegPath: string = (require('@ffmpeg-installer/ffmpeg') as { path: string }).path;
export const ffprobePath: string = (require('@ffprobe-installer/ffprobe') as { path: string }).path;
const run = promisify(execFile);

/** The checkout this file is in (found by walking up, so a bundled copy of it works too). */
function findRepoRoot(): string {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'scripts/build.mjs')) && existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error('harness: not inside the steadydancer-worker checkout');
  }
}
const repoRoot = findRepoRoot();

/** The pose fixture: 320×240, 17 frames at 16 fps (landscape, so the worker's crop shows). */
export const POSE = { width: 320, height: 240, frames: 17, fps: 16 } as const;

export interface Product {
  root: string;
  /** handler.cjs built with the production options. */
  bundle: string;
  /** The stand-in ComfyUI (bundled) to copy as <COMFYUI_DIR>/main.py. */
  standin: string;
  /** `python` for the supervisor: drops `-u` and execs node. */
  python: string;
  modelsDir: string;
  fixtures: { png: string; mp4: string };
  close(): void;
}

/** Builds the bundle, the stand-in, the python wrapper, model placeholders and media fixtures. */
export async function prepareProduct(): Promise<Product> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'sd-e2e-'));
  try {
    const bundle = path.join(root, 'dist', 'handler.cjs');
    const standin = path.join(root, 'standin', 'main.py');
    const fixtures = { png: path.join(root, 'media', 'person.png'), mp4: path.join(root, 'media', 'dance.mp4') };
    mkdirSync(path.dirname(fixtures.png), { recursive: true });
    const src = [...lavfiInput(`testsrc=size=${POSE.width}x${POSE.height}:rate=${POSE.fps}`)];
    await Promise.all([
      // the exact production build: the script itself, on this Node
      run(process.execPath, [path.join(repoRoot, 'scripts/build.mjs'), '--outfile', bundle]),
      build({
        entryPoints: [path.join(repoRoot, 'test/fakes/comfyui-process.ts')],
        outfile: standin,
        bundle: true,
        platform: 'node',
        format: 'cjs',
        target: 'node22',
        logLevel: 'warning',
      }),
      run(ffmpegPath, [...src, '-frames:v', '1', fixtures.png]),
      run(ffmpegPath, [
        ...src,
        '-frames:v',
        String(POSE.frames),
        '-pix_fmt',
        'yuv420p',
        '-c:v',
        'libx264',
        '-movflags',
        '+faststart',
        fixtures.mp4,
      ]),
    ]);
    const python = path.join(root, 'python');
    writeFileSync(
      python,
      `#!/bin/sh\n# ComfyUI is started as \`python -u main.py …\`; the stand-in is JS: drop -u, run it with node.\n[ "$1" = "-u" ] && shift\nexec "${process.execPath}" "$@"\n`,
    );
    chmodSync(python, 0o755);
    const modelsDir = path.join(root, 'models');
    for (const file of MODEL_FILES) {
      const p = path.join(modelsDir, file.folder, ...file.path.split('/'));
      mkdirSync(path.dirname(p), { recursive: true });
      writeFileSync(p, '');
    }
    return { root, bundle, standin, python, modelsDir, fixtures, close: () => rmSync(root, { recursive: true, force: true }) };
  } catch (err) {
    rmSync(root, { recursive: true, force: true });
    throw err;
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export interface InputServer {
  url: string;
  /** Requests seen, as paths. */
  paths: string[];
  close(): Promise<void>;
}

/** Serves files by name from a map; anything else is 404. `delayMs` holds every answer (a slow origin). */
export async function startInputServer(files: Record<string, string>, opts: { delayMs?: number } = {}): Promise<InputServer> {
  const paths: string[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const server: Server = createServer((req, res) => {
    const name = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname.slice(1));
    paths.push(`/${name}`);
    const answer = (): void => {
      const file = files[name];
      if (!file) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      const type = name.endsWith('.png') ? 'image/png' : 'video/mp4';
      res.writeHead(200, { 'content-type': type, 'content-length': statSync(file).size });
      createReadStream(file).pipe(res);
    };
    if (!opts.delayMs) return answer();
    const t = setTimeout(() => (timers.delete(t), answer()), opts.delayMs);
    timers.add(t);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    paths,
    close: async () => {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface WorkerDirs {
  comfyDir: string;
  workDir: string;
  outputDir: string;
  /** What the stand-in ComfyUI was asked (`METHOD /path` per line). */
  comfyRequests(): string[];
  /** Pid of the stand-in ComfyUI started last. */
  comfyPid(): number;
}

/** Fresh per-worker folders under the product root; the stand-in's behaviour in standin.json. */
export function workerDirs(product: Product, name: string, standin: Record<string, unknown> = {}): WorkerDirs {
  const base = mkdtempSync(path.join(product.root, `${name}-`));
  const dirs = { comfyDir: path.join(base, 'comfyui'), workDir: path.join(base, 'work'), outputDir: path.join(base, 'output') };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  writeFileSync(path.join(dirs.comfyDir, 'main.py'), readFileSync(product.standin));
  writeFileSync(path.join(dirs.comfyDir, 'standin.json'), JSON.stringify({ steadydancer: { ffmpegPath }, ...standin }));
  return {
    ...dirs,
    comfyPid: () => Number(readFileSync(path.join(dirs.comfyDir, 'pid'), 'utf8')),
    comfyRequests: () => {
      try {
        return readFileSync(path.join(dirs.comfyDir, 'requests.log'), 'utf8').split('\n').filter(Boolean);
      } catch {
        return [];
      }
    },
  };
}

/** The environment every mode shares (RunPod's variables and the bucket are added per mode). */
export async function baseEnv(product: Product, dirs: WorkerDirs, extra: Record<string, string> = {}): Promise<Record<string, string>> {
  return {
    PATH: process.env.PATH ?? '',
    COMFYUI_DIR: dirs.comfyDir,
    COMFYUI_PYTHON: product.python,
    COMFYUI_PORT: String(await freePort()),
    COMFYUI_STARTUP_TIMEOUT_S: '30',
    MODELS_DIR: product.modelsDir,
    FFPROBE_PATH: ffprobePath,
    ALLOW_PRIVATE_URLS: 'true',
    WORK_DIR: dirs.workDir,
    OUTPUT_DIR: dirs.outputDir,
    ...extra,
  };
}

export interface WorkerProcess {
  pid: number;
  exit: Promise<number | null>;
  output(): string;
  waitForOutput(text: string, timeoutMs?: number): Promise<void>;
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  stop(graceMs?: number): Promise<number | null>;
}

export function startWorker(bundle: string, opts: { env: Record<string, string>; args?: string[]; cwd?: string }): WorkerProcess {
  const child = spawn(process.execPath, [bundle, ...(opts.args ?? [])], {
    cwd: opts.cwd ?? os.tmpdir(),
    env: opts.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = collectOutput(child);
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const proc: WorkerProcess = {
    pid: child.pid ?? -1,
    exit,
    output: () => output.text(),
    waitForOutput: (text, timeoutMs = 10_000) => output.waitFor(text, timeoutMs),
    kill: (signal) => void child.kill(signal),
    stop: async (graceMs = 10_000) => {
      if (child.exitCode !== null || child.signalCode !== null) return exit;
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      child.kill('SIGTERM');
      const code = await exit;
      clearTimeout(timer);
      return code;
    },
  };
  return proc;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolves once `check` holds, testing every 20 ms up to the deadline (for state only a file shows). */
export async function waitUntil(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every file (not folder) under `dir`, relative. ComfyUI's per-worker input/output/temp folders may stay. */
export function filesUnder(dir: string): string[] {
  const found: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else found.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return found;
}

/** Folders under `dir` other than ComfyUI's layout (comfyui/{input,output,temp}): a job's leftovers. */
export function strayFolders(dir: string): string[] {
  const allowed = new Set(['comfyui', 'comfyui/input', 'comfyui/output', 'comfyui/temp']);
  const found: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      const rel = path.relative(dir, path.join(d, e.name));
      if (!allowed.has(rel)) found.push(rel);
      walk(path.join(d, e.name));
    }
  };
  walk(dir);
  return found;
}

export interface ProbedVideo {
  codec: string;
  pixFmt: string;
  width: number;
  height: number;
  frames: number;
  fps: number;
}

/** ffprobe's own reading of a file (frames decoded and counted, not taken from the header). */
export async function ffprobe(file: string): Promise<ProbedVideo> {
  const { stdout } = await run(ffprobePath, [
    '-v',
    'error',
    '-count_frames',
    '-select_streams',
    'v:0',
    '-show_entries',
    'stream=codec_name,pix_fmt,width,height,nb_read_frames,r_frame_rate',
    '-of',
    'json',
    file,
  ]);
  const s = (JSON.parse(stdout) as { streams: Record<string, string | number>[] }).streams[0] ?? {};
  const [num, den] = String(s.r_frame_rate).split('/').map(Number);
  return {
    codec: String(s.codec_name),
    pixFmt: String(s.pix_fmt),
    width: Number(s.width),
    height: Number(s.height),
    frames: Number(s.nb_read_frames),
    fps: (num ?? 0) / (den || 1),
  };
}

/** Downloads `url` into `dir` and probes it. */
export async function downloadAndProbe(url: string, dir: string): Promise<ProbedVideo & { bytes: number }> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url.split('?')[0]} answered ${res.status}: ${await res.text()}`);
  const data = Buffer.from(await res.arrayBuffer());
  const file = path.join(dir, `download-${Date.now()}-${Math.random().toString(36).slice(2)}.mp4`);
  writeFileSync(file, data);
  try {
    return { ...(await ffprobe(file)), bytes: data.length };
  } finally {
    rmSync(file, { force: true });
  }
}
