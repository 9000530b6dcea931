// The image installs exactly what workflows/pins.json pins, and docker/ + builder/ repeat none of it.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, read, readJson, run, type Pins } from './helpers';

const pins = readJson<Pins>('workflows/pins.json');

function filesUnder(rel: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(path.join(ROOT, rel))) {
    const child = path.join(rel, name);
    if (statSync(path.join(ROOT, child)).isDirectory()) out.push(...filesUnder(child));
    else out.push(child);
  }
  return out;
}
const imageFiles = [...filesUnder('docker'), ...filesUnder('builder')].filter((f) => !f.includes('__pycache__'));

// Runs install_comfyui.py's main() with git/pip replaced by recorders: what would it install?
const DRIVER = `
import importlib.util, json, pathlib, sys, types
spec = importlib.util.spec_from_file_location("ic", sys.argv[1])
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
calls = []
m.CONSTRAINTS = pathlib.Path(sys.argv[3]) / "constraints.txt"
m.run = lambda cmd, cwd=None, env=None: calls.append(["run"] + [str(c) for c in cmd])
def fake_clone(repo, commit, dest):
    m.checked_commit  # clone_at is only reached with a checked commit
    calls.append(["clone", repo, commit, str(dest)])
m.clone_at = fake_clone
def fake_subprocess_run(cmd, **kw):
    calls.append(["sub"] + [str(c) for c in cmd])
    return types.SimpleNamespace(returncode=0, stdout="numpy==2.1.0\\ntorch==9.9.9+cu999\\ntorchvision==0.1.0+cu999\\n")
m.subprocess.run = fake_subprocess_run
code = m.main(sys.argv[4:] + ["--pins", sys.argv[2], "--comfy-dir", "/comfyui", "--python", "py"])
print(json.dumps({"code": code, "calls": calls}))
`;

interface DriverOut {
  code: number;
  calls: string[][];
  log: string;
  constraints: string;
}

describe('builder installs the pins of workflows/pins.json', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sd-pins-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** pins.json with every placeholder commit replaced by a distinct made-up full SHA. */
  function filledPins(): { file: string; pins: Pins } {
    const fill = (name: string, commit: string) =>
      /^0{40}$/.test(commit) ? createHash('sha1').update(name).digest('hex') : commit;
    const copy = structuredClone(pins);
    copy.comfyui.commit = fill('comfyui', copy.comfyui.commit);
    for (const n of copy.custom_nodes) n.commit = fill(n.name, n.commit);
    const file = path.join(dir, 'pins-filled.json');
    writeFileSync(file, JSON.stringify(copy));
    return { file, pins: copy };
  }

  async function drive(pinsFile: string, ...args: string[]): Promise<DriverOut> {
    const r = await run('python3', ['-c', DRIVER, path.join(ROOT, 'builder/install_comfyui.py'), pinsFile, dir, ...args]);
    expect(r.stderr).toBe('');
    const lines = r.stdout.trim().split('\n');
    const out = JSON.parse(lines.pop()!) as { code: number; calls: string[][] };
    const constraintsFile = path.join(dir, 'constraints.txt');
    const constraints = existsSync(constraintsFile) ? readFileSync(constraintsFile, 'utf8') : '';
    return { ...out, log: lines.join('\n'), constraints };
  }

  it('clones ComfyUI and every custom node at exactly its pinned full commit', async () => {
    const { file, pins: p } = filledPins();
    const out = await drive(file, 'comfyui');
    expect(out.code).toBe(0);
    const clones = out.calls.filter((c) => c[0] === 'clone').map((c) => c.slice(1));
    expect(clones).toEqual([
      [p.comfyui.repo, p.comfyui.commit, '/comfyui'],
      ...p.custom_nodes.map((n) => [n.repo, n.commit, `/comfyui/custom_nodes/${n.name}`]),
    ]);
    const pipRuns = out.calls.filter((c) => c[0] === 'run' && c.includes('pip')).map((c) => c.join(' '));
    expect(pipRuns.at(-1)).toContain(`onnxruntime-gpu==${p.python.onnxruntime_gpu}`);
    expect(out.calls.some((c) => c[0] === 'sub' && c.join(' ').includes('uninstall --yes onnxruntime'))).toBe(true);
  });

  it('refuses a placeholder commit, naming the pin', async () => {
    const copy = structuredClone(pins);
    copy.custom_nodes[0]!.commit = '0'.repeat(40);
    copy.comfyui.commit = 'f'.repeat(40);
    const file = path.join(dir, 'pins-placeholder.json');
    writeFileSync(file, JSON.stringify(copy));
    const out = await drive(file, 'comfyui');
    expect(out.code).toBe(1);
    expect(out.log).toContain(`custom_nodes[${copy.custom_nodes[0]!.name}] still has the placeholder commit`);
  });

  it('refuses a short commit', async () => {
    const copy = structuredClone(pins);
    copy.comfyui.commit = 'abc1234';
    const file = path.join(dir, 'pins-short.json');
    writeFileSync(file, JSON.stringify(copy));
    const out = await drive(file, 'comfyui');
    expect(out.code).toBe(1);
    expect(out.log).toContain("comfyui.commit must be a full 40-hex SHA, got 'abc1234'");
  });

  it('installs the pinned torch from the pinned CUDA index and freezes torch*, onnxruntime-gpu and the validated environment as constraints', async () => {
    const out = await drive(path.join(ROOT, 'workflows/pins.json'), 'torch');
    expect(out.code).toBe(0);
    const install = out.calls.find((c) => c[0] === 'run')!.join(' ');
    expect(install).toContain(`--index-url ${pins.python.torch_index} torch==${pins.python.torch} torchvision torchaudio`);
    expect(out.constraints.split('\n').filter(Boolean)).toEqual([
      'torch==9.9.9+cu999',
      'torchvision==0.1.0+cu999',
      `onnxruntime-gpu==${pins.python.onnxruntime_gpu}`,
      ...validated,
    ]);
    expect(validated).toContain('requests==2.34.2');
  });

  const validated = readFileSync(path.join(ROOT, 'workflows/python-constraints.txt'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'));

  it('builds SageAttention from the release tag of the pinned version', async () => {
    const out = await drive(path.join(ROOT, 'workflows/pins.json'), 'sageattention', '--wheel-dir', path.join(dir, 'wheels'));
    // No wheel appears (pip is a recorder), so the step reports that after cloning the right tag.
    const clone = out.calls.find((c) => c.includes('clone'))!.join(' ');
    expect(clone).toContain(`--branch v${pins.python.sageattention} https://github.com/thu-ml/SageAttention`);
    expect(out.calls.some((c) => c.join(' ').includes('wheel --no-deps --no-build-isolation'))).toBe(true);
    expect(out.code).toBe(1);
    expect(out.log).toContain(`expected one sageattention-${pins.python.sageattention} wheel`);
  });

  it('rejects a prebuilt SageAttention wheel of another version or without a sha256', async () => {
    const noSha = await drive(path.join(ROOT, 'workflows/pins.json'), 'sageattention', '--wheel-url', 'https://x/sageattention-1.0.0-cp312-linux_x86_64.whl');
    expect(noSha.code).toBe(1);
    expect(noSha.log).toContain('needs SAGEATTENTION_WHEEL_SHA256');
    const wrong = await drive(path.join(ROOT, 'workflows/pins.json'), 'sageattention',
      '--wheel-url', 'https://x/sageattention-1.0.0-cp312-linux_x86_64.whl', '--wheel-sha256', 'a'.repeat(64));
    expect(wrong.code).toBe(1);
    expect(wrong.log).toContain(`is not sageattention ${pins.python.sageattention}`);
  });

  it('verifies the installed versions against the pins (torch, CUDA, sage, onnxruntime-gpu, python)', async () => {
    const out = await drive(path.join(ROOT, 'workflows/pins.json'), 'verify');
    expect(out.code).toBe(0);
    const cmd = out.calls.find((c) => c[0] === 'run')!;
    const want = JSON.parse(cmd.at(-1)!) as Record<string, string>;
    const cu = /cu(\d+)(\d)\/?$/.exec(pins.python.torch_index)!;
    expect(want).toEqual({
      torch: pins.python.torch,
      sageattention: pins.python.sageattention,
      onnxruntime_gpu: pins.python.onnxruntime_gpu,
      python: pins.python.version,
      cuda: `${cu[1]}.${cu[2]}`,
    });
  });
});

describe('docker/ and builder/ repeat no pin', () => {
  it('contain no commit SHA', () => {
    for (const f of imageFiles) expect({ file: f, shas: read(f).match(/\b[0-9a-f]{40}\b/g) ?? [] }).toEqual({ file: f, shas: [] });
  });

  it('contain none of the pinned versions as a literal', () => {
    const versions = [pins.python.torch, pins.python.sageattention, pins.python.onnxruntime_gpu, pins.python.version];
    if (pins.comfyui.ref && /\d/.test(pins.comfyui.ref)) versions.push(pins.comfyui.ref.replace(/^v/, ''));
    for (const f of imageFiles) {
      const text = read(f);
      for (const v of versions) {
        const literal = new RegExp(`(?<![\\d.])${v.replace(/\./g, '\\.')}(?![\\d.])`);
        expect({ file: f, version: v, found: literal.test(text) }).toEqual({ file: f, version: v, found: false });
      }
    }
  });

  it('take the CUDA base image from the version the torch wheel index names', () => {
    const dockerfile = read('docker/Dockerfile');
    const cuda = /^ARG CUDA_VERSION=(\d+)\.(\d+)\.\d+$/m.exec(dockerfile);
    expect(cuda).not.toBeNull();
    expect(pins.python.torch_index).toMatch(new RegExp(`/cu${cuda![1]}${cuda![2]}/?$`));
    const froms = dockerfile.match(/^FROM nvidia\/cuda:\S+/gm) ?? [];
    expect(froms).toEqual([
      'FROM nvidia/cuda:${CUDA_VERSION}-devel-ubuntu${UBUNTU_VERSION}',
      'FROM nvidia/cuda:${CUDA_VERSION}-cudnn-runtime-ubuntu${UBUNTU_VERSION}',
    ]);
  });

  it('take Node from package.json (>= 22, the version npm scripts run on)', () => {
    const pkg = readJson<{ devDependencies: Record<string, string>; engines: { node: string } }>('package.json');
    const node = pkg.devDependencies.node!;
    expect(node).toMatch(/^\d+\.\d+\.\d+$/);
    expect(Number(node.split('.')[0])).toBeGreaterThanOrEqual(22);
    expect(read('builder/install_node.sh')).toContain("jq -er '.devDependencies.node'");
    expect(read('docker/Dockerfile')).toContain('install_node.sh /opt/steadydancer/package.json');
  });

  it('pass workflows/pins.json to every install step the Dockerfile runs', () => {
    const dockerfile = read('docker/Dockerfile');
    for (const step of ['torch', 'sageattention', 'comfyui', 'turbodiffusion', 'verify']) {
      expect(dockerfile).toMatch(new RegExp(`install_comfyui\\.py ${step} --pins /opt/steadydancer/workflows/pins\\.json`));
    }
    expect(dockerfile).toContain('COPY workflows/pins.json /opt/steadydancer/workflows/');
  });
});
