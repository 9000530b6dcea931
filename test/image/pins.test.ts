// Every Python package the image installs is pinned exactly once (workflows/python-constraints.txt, the
// lock), commits and the Python/CUDA versions once (workflows/pins.json), the torch family agrees with
// itself and with the CUDA base images, builder/install_comfyui.py installs exactly that, and docker/,
// builder/ and the release workflow repeat none of it.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, canonical, read, readJson, readLock, run, type Pins } from './helpers';

const pins = readJson<Pins>('workflows/pins.json');
const lock = readLock();
const INSTALLER = path.join(ROOT, 'builder/install_comfyui.py');

function filesUnder(rel: string): string[] {
  if (!existsSync(path.join(ROOT, rel))) return [];
  const out: string[] = [];
  for (const name of readdirSync(path.join(ROOT, rel))) {
    const child = path.join(rel, name);
    if (statSync(path.join(ROOT, child)).isDirectory()) out.push(...filesUnder(child));
    else out.push(child);
  }
  return out;
}
const imageFiles = ['Dockerfile', ...filesUnder('docker'), ...filesUnder('builder'), ...filesUnder('.github')].filter(
  (f) => !f.includes('__pycache__'),
);

/** How the builder installs Python packages: wheels only, no cache left in the image. */
const PIP_INSTALL = ['py', '-m', 'pip', 'install', '--no-cache-dir', '--disable-pip-version-check', '--only-binary=:all:'];

describe('workflows/python-constraints.txt (the lock)', () => {
  const lines = read('workflows/python-constraints.txt')
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean);

  it('pins every package exactly once, as name==version', () => {
    for (const l of lines) expect(l).toMatch(/^[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!-]+$/);
    const names = lines.map((l) => canonical(l.split('==')[0]!));
    const twice = names.filter((n, i) => names.indexOf(n) !== i);
    expect(twice).toEqual([]);
    expect(lock.size).toBe(lines.length);
  });

  it('holds the image tooling and runtime: pip/setuptools/wheel, ninja, torch family, onnxruntime-gpu, triton', () => {
    for (const name of [
      'pip',
      'setuptools',
      'wheel',
      'ninja',
      'torch',
      'torchvision',
      'torchaudio',
      'triton',
      'onnxruntime-gpu',
      'torchsde',
      'coloredlogs',
      'humanfriendly',
    ]) {
      expect({ name, pinned: lock.has(name) }).toEqual({ name, pinned: true });
    }
  });

  it('has one OpenCV (both wheels write cv2/): the headless build, the other name replaced', () => {
    expect(lock.has('opencv-python-headless')).toBe(true);
    expect(lock.has('opencv-python')).toBe(false);
    expect(pins.python.replace).toEqual({ 'opencv-python': 'opencv-python-headless' });
    expect(lock.has('onnxruntime')).toBe(false); // the CPU build would shadow onnxruntime-gpu
  });

  it('keeps the torch family on one release: torchaudio = torch, torchvision 0.(minor+15), triton of that torch', () => {
    const [major, minor, patch] = lock.get('torch')!.split('.').map(Number);
    expect(lock.get('torchaudio')).toBe(`${major}.${minor}.${patch}`);
    expect(lock.get('torchvision')).toBe(`0.${minor! + 15}.${patch}`);
    // torch 2.9 was released with triton 3.5 (its metadata pins it; the resolution test checks that).
    expect(lock.get('triton')).toMatch(new RegExp(`^3\\.${minor! - 4}\\.`));
  });

  it('carries torch’s CUDA libraries for the CUDA of pins.json and the base images', () => {
    expect(lock.get('nvidia-cuda-runtime-cu12')).toMatch(new RegExp(`^${pins.python.cuda.replace('.', '\\.')}\\.`));
    const dockerfile = read('Dockerfile');
    const cuda = /^ARG CUDA_VERSION=(\d+\.\d+)\.\d+$/m.exec(dockerfile);
    expect(cuda?.[1]).toBe(pins.python.cuda);
    expect(dockerfile.match(/^FROM nvidia\/cuda:\S+/gm)).toEqual([
      'FROM nvidia/cuda:${CUDA_VERSION}-devel-ubuntu${UBUNTU_VERSION}',
      'FROM nvidia/cuda:${CUDA_VERSION}-base-ubuntu${UBUNTU_VERSION}',
      'FROM nvidia/cuda:${CUDA_VERSION}-base-ubuntu${UBUNTU_VERSION}',
    ]);
  });
});

describe('workflows/pins.json', () => {
  it('pins commits (full SHAs), the Python and CUDA versions, and no Python package version', () => {
    const commits = [pins.comfyui.commit, ...pins.custom_nodes.map((n) => n.commit), pins.python.sageattention.commit];
    for (const c of commits) expect(c).toMatch(/^[0-9a-f]{40}$/);
    expect(pins.python.version).toMatch(/^3\.\d+$/);
    expect(pins.python.cuda).toMatch(/^\d+\.\d+$/);
    const pythonKeys = Object.keys(pins.python).filter((k) => !k.startsWith('$'));
    expect(pythonKeys.sort()).toEqual(['cuda', 'extra_requirements', 'replace', 'sageattention', 'version']);
    for (const extra of pins.python.extra_requirements) expect(lock.has(canonical(extra))).toBe(true);
  });

  it('builds SageAttention from the commit that fixes the v2.2.0 tag’s Hopper binding', () => {
    expect(pins.python.sageattention).toMatchObject({
      version: '2.2.0',
      repo: 'https://github.com/thu-ml/SageAttention',
      commit: 'ff71e1e7ce086fff8669e7eb116ee77e265dbac1',
    });
    expect(pins.python.sageattention.commit).not.toBe('eb615cf6cf4d221338033340ee2de1c37fbdba4a'); // the broken tag
  });

  it('compiles kernels for Ampere, Ada and Hopper', () => {
    expect(pins.gpu.arch_list.split(';')).toEqual(['8.0', '8.6', '8.9', '9.0']);
  });
});

// Runs install_comfyui.py's main() with git/pip replaced by recorders: what would it install?
const DRIVER = `
import importlib.util, json, os, pathlib, sys, types
spec = importlib.util.spec_from_file_location("ic", sys.argv[1])
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
calls = []
installed = json.loads(os.environ["FAKE_INSTALLED"])
def fake_run(cmd, cwd=None, env=None):
    cmd = [str(c) for c in cmd]
    entry = ["run"] + cmd
    if "-r" in cmd:  # keep what a requirements file said: the installer deletes its temp file
        entry.append("REQS:" + pathlib.Path(cmd[cmd.index("-r") + 1]).read_text())
    if env is not None:
        entry.append("ENV:" + json.dumps({k: env.get(k) for k in ("MAX_JOBS", "EXT_PARALLEL", "TORCH_CUDA_ARCH_LIST")}))
    calls.append(entry)
m.run = fake_run
m.clone_at = lambda repo, commit, dest: calls.append(["clone", repo, commit, str(dest)])
def fake_subprocess_run(cmd, **kw):
    calls.append(["sub"] + [str(c) for c in cmd])
    return types.SimpleNamespace(returncode=0, stdout=json.dumps([{"name": n, "version": v} for n, v in installed.items()]))
m.subprocess.run = fake_subprocess_run
code = m.main(sys.argv[3:] + ["--pins", sys.argv[2], "--python", "py"])
print(json.dumps({"code": code, "calls": calls}))
`;

interface DriverOut {
  code: number;
  calls: string[][];
  log: string;
}

describe('builder/install_comfyui.py installs the lock and the pins', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sd-pins-'));
    // A stand-in ninja on PATH: the sageattention step refuses to build without one.
    writeFileSync(path.join(dir, 'ninja'), '#!/bin/sh\nexit 0\n');
    chmodSync(path.join(dir, 'ninja'), 0o755);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const lockAsInstalled = (): Record<string, string> => ({ ...Object.fromEntries(lock), sageattention: pins.python.sageattention.version });

  async function drive(
    args: string[],
    opts: { installed?: Record<string, string>; pinsFile?: string; env?: NodeJS.ProcessEnv } = {},
  ): Promise<DriverOut> {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PATH: `${dir}:${process.env.PATH}`,
      FAKE_INSTALLED: JSON.stringify(opts.installed ?? lockAsInstalled()),
    };
    delete env.MAX_JOBS;
    delete env.TORCH_CUDA_ARCH_LIST;
    Object.assign(env, opts.env);
    const r = await run('python3', ['-c', DRIVER, INSTALLER, opts.pinsFile ?? path.join(ROOT, 'workflows/pins.json'), ...args], { env });
    expect(r.stderr).toBe('');
    const lines = r.stdout.trim().split('\n');
    const out = JSON.parse(lines.pop()!) as { code: number; calls: string[][] };
    return { ...out, log: lines.join('\n') };
  }

  it('python: installs the whole lock from PyPI, binary wheels only, the lock as its own constraints', async () => {
    const out = await drive(['python']);
    expect(out.code).toBe(0);
    const lockFile = path.join(ROOT, 'workflows/python-constraints.txt');
    expect(out.calls).toEqual([
      ['run', ...PIP_INSTALL, '-r', lockFile, '-c', lockFile, `REQS:${read('workflows/python-constraints.txt')}`],
    ]);
  });

  it('comfyui: clones everything at its full pinned commit, installs the requirements under the lock (names replaced), then checks the env', async () => {
    const comfy = path.join(dir, 'comfyui');
    const out = await drive(['comfyui', '--comfy-dir', comfy]);
    expect(out.code).toBe(0);
    expect(out.calls.filter((c) => c[0] === 'clone').map((c) => c.slice(1))).toEqual([
      [pins.comfyui.repo, pins.comfyui.commit, comfy],
      ...pins.custom_nodes.map((n) => [n.repo, n.commit, path.join(comfy, 'custom_nodes', n.name)]),
    ]);
    // No requirements.txt exist in the recorded "clones": only the extra requirements are installed.
    const install = out.calls.find((c) => c[0] === 'run')!;
    expect(install.slice(1, 10)).toEqual([...PIP_INSTALL, '-c', path.join(ROOT, 'workflows/python-constraints.txt')]);
    expect(install.at(-1)).toBe(`REQS:${pins.python.extra_requirements.join('\n')}\n`);
    expect(out.log).toContain(`environment matches the lock: ${lock.size + 1} packages`);
  });

  it('comfyui --existing: uses a checkout as it is, and rewrites opencv-python to the headless build', async () => {
    const comfy = mkdtempSync(path.join(dir, 'existing-'));
    writeFileSync(path.join(comfy, 'requirements.txt'), 'torch\nnumpy>=1.25.0  # comment\n\n');
    for (const n of pins.custom_nodes) mkdirSync(path.join(comfy, 'custom_nodes', n.name), { recursive: true });
    writeFileSync(
      path.join(comfy, 'custom_nodes', pins.custom_nodes[0]!.name, 'requirements.txt'),
      'opencv-python\nOpenCV_Python>=4.8\nopencv-python-headless\n',
    );
    const out = await drive(['comfyui', '--comfy-dir', comfy, '--existing']);
    expect(out.code).toBe(0);
    expect(out.calls.filter((c) => c[0] === 'clone')).toEqual([]);
    const reqs = out.calls.find((c) => c[0] === 'run')!.at(-1)!;
    expect(reqs).toBe(
      `REQS:torch\nnumpy>=1.25.0\nopencv-python-headless\nopencv-python-headless>=4.8\nopencv-python-headless\n${pins.python.extra_requirements.join('\n')}\n`,
    );
  });

  it('fails when anything installed is not in the lock, differs from it, or a pin is missing', async () => {
    const installed = lockAsInstalled();
    installed['opencv-python'] = '4.12.0.88';
    installed.numpy = '1.26.4';
    delete installed.ninja;
    const out = await drive(['comfyui', '--comfy-dir', path.join(dir, 'c2')], { installed });
    expect(out.code).toBe(1);
    expect(out.log).toContain('opencv-python==4.12.0.88 is installed but not pinned in python-constraints.txt');
    expect(out.log).toContain(`numpy is 1.26.4, the lock says ${lock.get('numpy')}`);
    expect(out.log).toContain(`ninja==${lock.get('ninja')} is pinned but not installed`);
  });

  it('refuses a placeholder or short commit, naming the pin', async () => {
    const copy = structuredClone(pins);
    copy.custom_nodes[0]!.commit = '0'.repeat(40);
    const file = path.join(dir, 'pins-placeholder.json');
    writeFileSync(file, JSON.stringify(copy));
    const out = await drive(['comfyui', '--comfy-dir', path.join(dir, 'c3')], { pinsFile: file });
    expect(out.code).toBe(1);
    expect(out.log).toContain(`custom_nodes[${copy.custom_nodes[0]!.name}] still has the placeholder commit`);
    copy.custom_nodes[0]!.commit = 'abc1234';
    writeFileSync(file, JSON.stringify(copy));
    const short = await drive(['comfyui', '--comfy-dir', path.join(dir, 'c4')], { pinsFile: file });
    expect(short.log).toContain(`custom_nodes[${copy.custom_nodes[0]!.name}].commit must be a full 40-hex SHA, got 'abc1234'`);
  });

  it('refuses a lock that pins a package twice or is not name==version', async () => {
    const copyDir = mkdtempSync(path.join(dir, 'lock-'));
    writeFileSync(path.join(copyDir, 'pins.json'), JSON.stringify(pins));
    writeFileSync(path.join(copyDir, 'python-constraints.txt'), 'torch==2.9.1\nPillow==13.0.0\npillow==12.0.0\n');
    const twice = await drive(['python'], { pinsFile: path.join(copyDir, 'pins.json') });
    expect(twice.code).toBe(1);
    expect(twice.log).toContain('python-constraints.txt:3: pillow is pinned twice');
    expect(twice.calls).toEqual([]);
    writeFileSync(path.join(copyDir, 'python-constraints.txt'), 'torch>=2.9\n');
    const loose = await drive(['python'], { pinsFile: path.join(copyDir, 'pins.json') });
    expect(loose.log).toContain("python-constraints.txt:1: expected 'name==version', got 'torch>=2.9'");
  });

  it('sageattention: builds the pinned commit (not the tag) for pins.json’s architectures, parallelism bounded', async () => {
    const out = await drive(['sageattention', '--wheel-dir', path.join(dir, 'wheels')]);
    expect(out.calls.find((c) => c[0] === 'clone')!.slice(1, 3)).toEqual([
      pins.python.sageattention.repo,
      pins.python.sageattention.commit,
    ]);
    const wheel = out.calls.find((c) => c.includes('wheel'))!;
    expect(wheel.slice(1, 6)).toEqual(['py', '-m', 'pip', 'wheel', '--no-deps']);
    const env = JSON.parse(wheel.at(-1)!.replace(/^ENV:/, '')) as Record<string, string>;
    expect(env.TORCH_CUDA_ARCH_LIST).toBe(pins.gpu.arch_list);
    expect(Number(env.MAX_JOBS) * Number(env.EXT_PARALLEL)).toBeGreaterThanOrEqual(1);
    expect(Number(env.MAX_JOBS) * Number(env.EXT_PARALLEL)).toBeLessThanOrEqual(os.cpus().length);
    // pip is a recorder, so no wheel appears: the step says so after building the right source.
    expect(out.code).toBe(1);
    expect(out.log).toContain(`expected one sageattention-${pins.python.sageattention.version} wheel`);
  });

  it('sageattention: an explicit MAX_JOBS and arch list win over the defaults', async () => {
    const out = await drive(['sageattention', '--wheel-dir', path.join(dir, 'wheels')], {
      env: { MAX_JOBS: '3', TORCH_CUDA_ARCH_LIST: '9.0' },
    });
    const env = JSON.parse(
      out.calls
        .find((c) => c.includes('wheel'))!
        .at(-1)!
        .replace(/^ENV:/, ''),
    ) as Record<string, string>;
    expect(env).toEqual({ MAX_JOBS: '3', EXT_PARALLEL: '1', TORCH_CUDA_ARCH_LIST: '9.0' });
  });

  it('sageattention: parallelism fits the memory (nvcc × architectures) and the CPUs', async () => {
    const code = `
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("ic", sys.argv[1]); m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
print(json.dumps([m.compile_parallelism(*a) for a in json.loads(sys.argv[2])]))`;
    const cases = [
      ['8.0;8.6;8.9;9.0', 16, 128],
      ['8.0;8.6;8.9;9.0', 4, 16],
      ['9.0', 64, 512],
      ['8.0;8.6;8.9;9.0;10.0;12.0', 32, 64],
    ];
    const r = await run('python3', ['-c', code, INSTALLER, JSON.stringify(cases)]);
    // 4 archs × 3 GiB = 12 GiB per nvcc: 128 GiB → 10 nvcc; 16 GiB → 1; 1 arch: CPU-bound; 6 archs × 3 = 18 GiB → 3.
    expect(JSON.parse(r.stdout)).toEqual([
      [4, 2],
      [1, 1],
      [4, 16],
      [3, 1],
    ]);
  });

  it('sageattention: rejects a prebuilt wheel of another version or without a sha256', async () => {
    const noSha = await drive(['sageattention', '--wheel-url', 'https://x/sageattention-1.0.0-cp312-linux_x86_64.whl']);
    expect(noSha.code).toBe(1);
    expect(noSha.log).toContain('needs SAGEATTENTION_WHEEL_SHA256');
    const wrong = await drive([
      'sageattention',
      '--wheel-url',
      'https://x/sageattention-1.0.0-cp312-linux_x86_64.whl',
      '--wheel-sha256',
      'a'.repeat(64),
    ]);
    expect(wrong.code).toBe(1);
    expect(wrong.log).toContain(`is not sageattention ${pins.python.sageattention.version}`);
  });

  it('verify: compares torch, CUDA, sageattention, onnxruntime-gpu and Python with the lock and pins', async () => {
    const out = await drive(['verify']);
    expect(out.code).toBe(0);
    const cmd = out.calls.find((c) => c[0] === 'run')!;
    expect(JSON.parse(cmd.at(-1)!)).toEqual({
      torch: lock.get('torch'),
      sageattention: pins.python.sageattention.version,
      onnxruntime_gpu: lock.get('onnxruntime-gpu'),
      python: pins.python.version,
      cuda: pins.python.cuda,
    });
  });
});

describe('docker/, builder/, the Dockerfile and the release workflow repeat no pin', () => {
  it('contain no commit SHA (GitHub Actions are pinned by theirs, in `uses:` lines)', () => {
    for (const f of imageFiles) {
      const text = read(f)
        .split('\n')
        .filter((l) => !/^\s*(- )?uses: [\w./-]+@[0-9a-f]{40} # v[\d.]+$/.test(l))
        .join('\n');
      expect({ file: f, shas: text.match(/\b[0-9a-f]{40}\b/g) ?? [] }).toEqual({ file: f, shas: [] });
    }
  });

  it('contain none of the pinned versions as a literal', () => {
    const versions = ['torch', 'torchvision', 'torchaudio', 'triton', 'onnxruntime-gpu'].map((n) => lock.get(n)!);
    versions.push(pins.python.sageattention.version, pins.python.version);
    if (pins.comfyui.ref && /\d/.test(pins.comfyui.ref)) versions.push(pins.comfyui.ref.replace(/^v/, ''));
    for (const f of imageFiles) {
      const text = read(f);
      for (const v of versions) {
        const literal = new RegExp(`(?<![\\d.])${v.replace(/\./g, '\\.')}(?![\\d.])`);
        expect({ file: f, version: v, found: literal.test(text) }).toEqual({ file: f, version: v, found: false });
      }
    }
  });

  it('take Node from package.json (>= 22, the version npm scripts run on)', () => {
    const pkg = readJson<{ devDependencies: Record<string, string> }>('package.json');
    const node = pkg.devDependencies.node!;
    expect(node).toMatch(/^\d+\.\d+\.\d+$/);
    expect(Number(node.split('.')[0])).toBeGreaterThanOrEqual(22);
    expect(read('builder/install_node.sh')).toContain("jq -er '.devDependencies.node'");
    expect(read('Dockerfile')).toContain('install_node.sh /opt/steadydancer/package.json');
  });

  it('run every install step with workflows/pins.json', () => {
    const dockerfile = read('Dockerfile');
    for (const step of ['python', 'sageattention', 'comfyui', 'verify', 'ldconfig']) {
      expect(dockerfile).toMatch(new RegExp(`install_comfyui\\.py ${step} --pins /opt/steadydancer/workflows/pins\\.json`));
    }
    expect(dockerfile).toContain('COPY workflows/pins.json workflows/python-constraints.txt /opt/steadydancer/workflows/');
  });
});
