// The Dockerfile, the compose file, builder/build.sh and .runpod/ agree with the rest of the repo and
// with RunPod's Hub layout (.runpod/ for hub.json, tests.json and the Hub's README; ./Dockerfile).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ENV_VARS } from '../../src/config';
import { createJobInputSchema, parseJobInput, type JobInputSchema } from '../../src/job/schema';
import { isWorkerError } from '../../src/lib/errors';
import { DEFAULT_VARIANT, MAX_PROMPT_CHARS, MAX_SEED, VARIANTS, type VariantName } from '../../src/workflow';
import { builderPython } from '../gpu/hook-python';
import { ROOT, read, readJson, run, type ModelManifest, type Pins } from './helpers';

const dockerfile = read('Dockerfile');
const manifest = readJson<ModelManifest>('workflows/models.json');
const pins = readJson<Pins>('workflows/pins.json');

/** Dockerfile lines with `\` continuations joined. */
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .filter((l) => l.trim() && !l.startsWith('#'));

describe('the handler bundle', () => {
  const outfile = /outfile:\s*'([^']+)'/.exec(read('scripts/build.mjs'))![1]!;

  it('is built in the image by `npm run build` and copied from where scripts/build.mjs writes it', () => {
    expect(outfile).toBe('dist/handler.cjs');
    expect(instructions).toContain(`RUN npm run build && test -s ${outfile}`);
    const copy = instructions.find((l) => l.startsWith('COPY --from=bundle'))!;
    expect(copy).toBe(`COPY --from=bundle /build/${path.posix.dirname(outfile)} ./${path.posix.dirname(outfile)}`);
  });

  it('is the container command, on the Node installed in the image, its compile cache filled at build time', () => {
    const workdirs = instructions.filter((l) => l.startsWith('WORKDIR'));
    expect(workdirs.at(-1)).toBe('WORKDIR /app');
    expect(instructions.at(-1)).toBe(`CMD ["node", "${outfile}"]`);
    const warm = instructions.at(-2)!;
    expect(warm).toContain(`RUN node -e "require('/app/${outfile}')"`);
    expect(warm).toContain(`/app/${path.posix.dirname(outfile)}/.compile-cache`);
  });

  it('compose runs the same file as the local API on 0.0.0.0:8000 and publishes the port', () => {
    const compose = read('docker/compose.yaml');
    expect(compose).toContain(
      `command: ["node", "--enable-source-maps", "${outfile}", "--rp_serve_api", "--rp_api_host", "0.0.0.0", "--rp_api_port", "8000"]`,
    );
    expect(compose).toMatch(/ports:\n\s+- "\$\{PORT:-8000\}:8000"/);
    expect(compose).toMatch(/context: \.\.\n\s+dockerfile: Dockerfile/);
    expect(compose).toMatch(/driver: nvidia/);
  });

  it('compose builds with args the Dockerfile declares and runs with the weights it built for', () => {
    const compose = read('docker/compose.yaml');
    const dockerArgs = new Set(
      instructions.flatMap((l) =>
        l.startsWith('ARG ')
          ? l
              .slice(4)
              .split(/\s+/)
              .map((a) => a.split('=')[0])
          : [],
      ),
    );
    const buildArgs = [
      ...compose
        .slice(compose.indexOf('      args:\n'))
        .split('secrets:')[0]!
        .matchAll(/^ {8}([A-Z_]+):/gm),
    ].map((m) => m[1]);
    expect(buildArgs).toEqual(expect.arrayContaining(['MODELS', 'PRECISION', 'VARIANTS', 'TORCH_CUDA_ARCH_LIST']));
    for (const a of buildArgs) expect({ arg: a, declared: dockerArgs.has(a!) }).toEqual({ arg: a, declared: true });
    // One name for the weights: the build arg and the worker's MODEL_PRECISION (a volume image does not set it).
    expect(compose).toContain('PRECISION: ${PRECISION:-fp8}\n');
    expect(compose).toContain('MODEL_PRECISION: ${PRECISION:-fp8}\n');
    const environment = compose.slice(compose.indexOf('    environment:\n'), compose.indexOf('    volumes:\n'));
    const passed = [...environment.matchAll(/^ {6}([A-Z_0-9]+):/gm)].map((m) => m[1]!);
    for (const v of ['VRAM_MODE', 'BLOCK_SWAP', 'ATTENTION_MODE', 'TORCH_COMPILE', 'PREFETCH_MODELS', 'JOB_TIMEOUT_S'])
      expect(passed).toContain(v);
    for (const v of passed) expect({ v, known: [...ENV_VARS, 'STEADYDANCER_GPU_MEMORY_GB'].includes(v) }).toEqual({ v, known: true });
  });
});

describe('Dockerfile', () => {
  /** Instructions of each stage, by stage name. */
  const stages = new Map<string, string[]>();
  let current = '';
  for (const l of instructions) {
    const from = /^FROM (\S+) AS (\S+)$/.exec(l);
    if (from) {
      current = from[2]!;
      stages.set(current, [l]);
    } else if (current) stages.get(current)!.push(l);
  }

  it('sits at the repo root, where RunPod’s GitHub integration and Hub build it (no .runpod/Dockerfile to shadow it)', () => {
    expect(existsSync(path.join(ROOT, 'Dockerfile'))).toBe(true);
    expect(existsSync(path.join(ROOT, '.runpod/Dockerfile'))).toBe(false);
    expect(existsSync(path.join(ROOT, 'docker/Dockerfile'))).toBe(false);
  });

  it('copies only files that exist and that .dockerignore lets into the context', () => {
    const allowed = read('.dockerignore')
      .split('\n')
      .filter((l) => l.startsWith('!'))
      .map((l) => l.slice(1));
    const sources = instructions
      .filter((l) => l.startsWith('COPY ') && !l.includes('--from='))
      .flatMap((l) =>
        l
          .split(/\s+/)
          .slice(1, -1)
          .filter((w) => !w.startsWith('--')),
      );
    expect(sources.length).toBeGreaterThan(10);
    for (const src of sources) {
      expect({ src, exists: existsSync(path.join(ROOT, src)) }).toEqual({ src, exists: true });
      const included = allowed.some((a) => (a.endsWith('/') ? src === a.slice(0, -1) || src.startsWith(a) : src === a));
      expect({ src, included }).toEqual({ src, included: true });
    }
  });

  it('builds kernels in a devel stage and runs on the CUDA base image (torch’s wheels carry the CUDA libraries)', () => {
    expect(stages.get('python-build')![0]).toMatch(/^FROM nvidia\/cuda:\S+-devel-\S+ AS python-build$/);
    expect(stages.get('runtime-base')![0]).toMatch(/^FROM nvidia\/cuda:\$\{CUDA_VERSION\}-base-\S+ AS runtime-base$/);
    expect(dockerfile).not.toMatch(/cudnn|-runtime-ubuntu/);
    expect(stages.get('final')!.join('\n')).toContain('install_comfyui.py ldconfig');
    expect(dockerfile).toContain('ffmpeg');
  });

  it('sets HF_HUB_OFFLINE=1 at runtime: nothing is downloaded when the worker starts', () => {
    expect(stages.get('runtime-base')!.some((l) => /^ENV .*\bHF_HUB_OFFLINE=1\b/.test(l))).toBe(true);
  });

  it('passes the Hugging Face token only as a build secret', () => {
    expect(dockerfile).toContain('--mount=type=secret,id=hf_token');
    expect(dockerfile).not.toMatch(/ARG HF_TOKEN|ENV HF_TOKEN/);
  });

  describe('models: one stage and one image layer per manifest slot, independent of everything but the manifest', () => {
    const modelStages = [...stages.keys()].filter((n) => n.startsWith('model-') && n !== 'model-fetcher');
    const slotIds = new Map(
      modelStages.map((n) => {
        const runLine = stages.get(n)!.find((l) => l.startsWith('RUN '))!;
        return [n, /fetch_model_slot\.sh (?:--derive )?(\S+)$/.exec(runLine)![1]!.split(',')] as const;
      }),
    );

    it('every manifest file is in exactly one slot, and every slot names manifest files', () => {
      const ids = [...slotIds.values()].flat();
      expect([...ids].sort()).toEqual(manifest.files.map((f) => f.id).sort());
    });

    it('a slot holds one large file (a model with its ONNX external data counts as one)', () => {
      for (const [stage, ids] of slotIds) {
        const files = manifest.files.filter((f) => ids.includes(f.id));
        const combos = new Set(files.flatMap((f) => f.precisions.map((p) => p)));
        for (const p of combos) {
          const inSlot = files.filter((f) => f.precisions.includes(p));
          // An ONNX graph whose weights are an external-data file beside it travels with that file.
          const large = inSlot.filter(
            (f) =>
              !(
                f.path.endsWith('.onnx') && inSlot.some((o) => o.path !== f.path && o.path === f.path.replace(/_model\.onnx$/, '_data.bin'))
              ),
          );
          expect({ stage, precision: p, largeFiles: large.length }).toEqual({ stage, precision: p, largeFiles: 1 });
        }
      }
    });

    const derived = new Set(manifest.files.filter((f) => 'derive' in f).map((f) => f.id));
    const isDerived = (n: string) => slotIds.get(n)!.every((id) => derived.has(id));

    it('download slots build on a fetcher that copies only the downloader and the manifest (no package.json, pins or handler)', () => {
      const fetcher = stages.get('model-fetcher')!;
      expect(fetcher[0]).toMatch(/^FROM nvidia\/cuda:\S+ AS model-fetcher$/);
      const copied = fetcher.filter((l) => l.startsWith('COPY ')).flatMap((l) => l.split(/\s+/).slice(1, -1));
      expect(copied.sort()).toEqual(['builder/download_models.py', 'builder/fetch_model_slot.sh', 'workflows/models.json']);
      for (const n of modelStages.filter((s) => !isDerived(s))) {
        expect(stages.get(n)![0]).toBe(`FROM model-fetcher AS ${n}`);
        expect(stages.get(n)!.filter((l) => l.startsWith('COPY'))).toEqual([]);
        expect(slotIds.get(n)!.some((id) => derived.has(id))).toBe(false);
      }
    });

    it('derived files are made in slots of their own, on the Python stack (NumPy, ml_dtypes), with --derive', () => {
      const slots = modelStages.filter(isDerived);
      expect(slots.flatMap((n) => slotIds.get(n)!).sort()).toEqual([...derived].sort());
      for (const n of slots) {
        const lines = stages.get(n)!;
        expect(lines[0]).toBe(`FROM python-build AS ${n}`);
        const copied = lines.filter((l) => l.startsWith('COPY ')).flatMap((l) => l.split(/\s+/).slice(1, -1));
        expect(copied.sort()).toEqual([
          'builder/derive_model.py',
          'builder/download_models.py',
          'builder/fetch_model_slot.sh',
          'workflows/models.json',
        ]);
        expect(lines.find((l) => l.startsWith('RUN '))).toContain('fetch_model_slot.sh --derive ');
      }
    });

    it('the final image copies each slot with COPY --link, before the Python stack and the handler', () => {
      const final = stages.get('final')!;
      const copies = final.filter((l) => l.startsWith('COPY --link --from=model-'));
      expect(copies).toEqual(modelStages.map((n) => `COPY --link --from=${n} /models/ /comfyui/models/`));
      const firstOther = final.findIndex((l) => l.startsWith('COPY') && !l.includes('--from=model-'));
      expect(final.findIndex((l) => l.includes('--from=model-'))).toBeLessThan(firstOther);
    });
  });

  it('has no TurboDiffusion switch (nothing of TurboDiffusion applies to SteadyDancer beyond what is shipped)', () => {
    expect(dockerfile).not.toMatch(/TURBODIFFUSION|turbodiffusion/);
    expect(read('builder/build.sh')).not.toMatch(/turbodiffusion/);
  });

  it('selects the model location by build arg', () => {
    expect(dockerfile).toMatch(/^ARG MODELS=baked$/m);
    expect(dockerfile).toContain('FROM env-${MODELS} AS final');
    for (const stage of ['env-volume', 'env-baked']) expect(stages.has(stage)).toBe(true);
    expect(stages.get('env-volume')).toContain('ENV MODELS_DIR=/runpod-volume/models');
  });
});

describe('builder/fetch_model_slot.sh', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sd-slot-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('bakes nothing for MODELS=volume and refuses to run without the build args', async () => {
    const script = path.join(ROOT, 'builder/fetch_model_slot.sh');
    const volume = await run('bash', [script, 'wan21-vae'], { env: { ...process.env, MODELS: 'volume', SLOT_DEST: path.join(dir, 'v') } });
    expect(volume.code).toBe(0);
    expect(volume.stdout).toContain('MODELS=volume: nothing baked for wan21-vae');
    const missing = await run('bash', [script, 'wan21-vae'], { env: { ...process.env, MODELS: 'baked', SLOT_DEST: path.join(dir, 'b') } });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('PRECISION must be set');
  });

  it("--derive makes turbo-fp8's model only when VARIANTS names it, and only for fp8", async () => {
    const script = path.join(ROOT, 'builder/fetch_model_slot.sh');
    const python = await builderPython();
    const slot = (over: Record<string, string>) =>
      run('bash', [script, '--derive', 'steadydancer-lightx2v-merged-fp8'], {
        env: {
          ...process.env,
          PATH: `${path.dirname(python)}:${process.env.PATH}`,
          MODELS: 'baked',
          SLOT_DEST: path.join(dir, 'd'),
          ...over,
        },
      });
    const all = await slot({ PRECISION: 'fp8', VARIANTS: 'all' });
    expect(all.code).toBe(0);
    expect(all.stdout).toContain('steadydancer-lightx2v-merged-fp8: made only when VARIANTS names turbo-fp8');
    const fp16 = await slot({ PRECISION: 'fp16', VARIANTS: 'turbo,turbo-fp8' });
    expect(fp16.code).toBe(0);
    expect(fp16.stdout).toContain("not made for precision 'fp16' (only fp8)");
    // Named, for fp8: it goes for the inputs (here a hub that has none: 404, so it fails loudly and leaves nothing).
    const hub = http.createServer((_req, res) => res.writeHead(404).end('Entry not found'));
    await new Promise<void>((resolve) => hub.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(hub.address() as AddressInfo).port}`;
    const named = await slot({ PRECISION: 'fp8', VARIANTS: 'turbo-fp8', HF_ENDPOINT: endpoint, HF_TOKEN: '' }).finally(() => hub.close());
    expect(named.code).toBe(1);
    expect(named.stderr).toContain('404');
    expect(named.stderr).toContain('steadydancer-lightx2v-merged-fp8 FAILED');
    expect(readdirSync(path.join(dir, 'd'))).toEqual([]);
  }, 900_000);

  it('selects by the build args: a turbo-only fp8 image has no rCM LoRA slot content', async () => {
    const script = path.join(ROOT, 'builder/fetch_model_slot.sh');
    const r = await run('bash', [script, 'rcm-t2v-lora'], {
      env: { ...process.env, MODELS: 'baked', PRECISION: 'fp8', VARIANTS: 'turbo', SLOT_DEST: path.join(dir, 'r') },
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("rcm-t2v-lora: not needed for precision 'fp8' and variants 'turbo'");
  });
});

interface DryRun {
  code: number;
  tag: string;
  buildArgs: Record<string, string>;
  command: string;
  out: string;
}

async function dryRun(args: string[], env: NodeJS.ProcessEnv = {}): Promise<DryRun> {
  const { HF_TOKEN: _drop, ...base } = process.env;
  const r = await run('bash', [path.join(ROOT, 'builder/build.sh'), '--dry-run', ...args], { env: { ...base, ...env } });
  const out = r.stdout + r.stderr;
  const buildArgs = Object.fromEntries([...r.stdout.matchAll(/^build-arg: ([A-Z0-9_]+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
  return {
    code: r.code,
    tag: /^tag: (.*)$/m.exec(r.stdout)?.[1] ?? '',
    buildArgs,
    command: /^would run: (docker buildx build .*)$/m.exec(r.stdout)?.[1] ?? '',
    out,
  };
}

describe('builder/build.sh --dry-run', () => {
  const precisions = [...new Set(manifest.files.flatMap((f) => f.precisions))];
  const variants = [...new Set(manifest.files.flatMap((f) => f.variants))];
  const dockerArgs = new Set([...dockerfile.matchAll(/^ARG ([A-Z0-9_]+)/gm)].map((m) => m[1]!));

  it.each(precisions)('baked %s: immutable tag, linux/amd64, build args the Dockerfile declares, loaded locally', async (precision) => {
    const r = await dryRun(['--precision', precision, '--version', '1.2.3', '--repo', 'registry.example/me/sd']);
    expect(r.code).toBe(0);
    expect(r.tag).toBe(`registry.example/me/sd:1.2.3-${precision}-baked`);
    expect(r.buildArgs).toEqual({ MODELS: 'baked', PRECISION: precision, VARIANTS: 'all' });
    for (const key of Object.keys(r.buildArgs)) expect(dockerArgs.has(key)).toBe(true);
    expect(r.command).toBe(
      `docker buildx build --platform linux/amd64 --provenance=false --file ${ROOT}/Dockerfile --tag ${r.tag} --load ` +
        Object.entries(r.buildArgs)
          .map(([k, v]) => `--build-arg ${k}=${v}`)
          .join(' ') +
        ` ${ROOT}`,
    );
    expect(r.out).not.toContain('imagetools');
  });

  it.each(variants)('baked with only variant %s: tag and VARIANTS name it', async (variant) => {
    const r = await dryRun(['--variants', variant, '--version', '1.2.3']);
    expect(r.code).toBe(0);
    expect(r.tag).toBe(`steadydancer-worker:1.2.3-fp8-baked-${variant}`);
    expect(r.buildArgs.VARIANTS).toBe(variant);
  });

  it('volume image pushed: one precision-free tag, pushed by buildx itself after an existence check, with a registry cache', async () => {
    const r = await dryRun([
      '--models',
      'volume',
      '--push',
      '--repo',
      'ghcr.io/me/sd',
      '--version',
      '2.0.0',
      '--cache',
      'ghcr.io/me/sd:buildcache-volume',
    ]);
    expect(r.code).toBe(0);
    expect(r.tag).toBe('ghcr.io/me/sd:2.0.0-volume');
    expect(r.buildArgs).toMatchObject({ MODELS: 'volume' });
    expect(r.out.indexOf(`would check: docker buildx imagetools inspect ${r.tag} (must not exist)`)).toBeLessThan(
      r.out.indexOf('would run:'),
    );
    expect(r.command).toContain(`--tag ${r.tag} --push `);
    expect(r.command).toContain(
      '--cache-from type=registry,ref=ghcr.io/me/sd:buildcache-volume --cache-to type=registry,ref=ghcr.io/me/sd:buildcache-volume,mode=max',
    );
    expect(r.out).toMatch(/would print: the image size \(docker buildx imagetools inspect --raw/);
  });

  it('default version = package.json version + git commit (+ -dirty for uncommitted changes)', async () => {
    const version = readJson<{ version: string }>('package.json').version;
    const r = await dryRun([]);
    expect(r.code).toBe(0);
    expect(r.tag).toMatch(new RegExp(`^steadydancer-worker:${version.replace(/\./g, '\\.')}-[0-9a-f]{12}(-dirty)?-fp8-baked$`));
  });

  it('passes the HF token as a secret reference, never its value', async () => {
    const fromEnv = await dryRun(['--version', '1'], { HF_TOKEN: 'hf_topsecret' });
    expect(fromEnv.command).toContain('--secret id=hf_token,env=HF_TOKEN');
    expect(fromEnv.out).not.toContain('hf_topsecret');
    const fromFile = await dryRun(['--version', '1', '--hf-token-file', path.join(ROOT, 'package.json')]);
    expect(fromFile.command).toContain(`--secret id=hf_token,src=${ROOT}/package.json`);
    const none = await dryRun(['--version', '1']);
    expect(none.command).not.toContain('--secret');
  });

  it('passes a prebuilt SageAttention wheel and arch list through', async () => {
    const sha = 'b'.repeat(64);
    const r = await dryRun(['--version', '1', '--sage-wheel-url', 'https://x/w.whl', '--sage-wheel-sha256', sha, '--arch-list', '9.0']);
    expect(r.buildArgs).toMatchObject({
      SAGEATTENTION_WHEEL_URL: 'https://x/w.whl',
      SAGEATTENTION_WHEEL_SHA256: sha,
      TORCH_CUDA_ARCH_LIST: '9.0',
    });
    for (const key of Object.keys(r.buildArgs)) expect(dockerArgs.has(key)).toBe(true);
  });

  it.each([
    [['--precision', 'int3'], "no file in workflows/models.json has precision 'int3'"],
    [['--models', 'cloud'], "--models must be baked or volume, got 'cloud'"],
    [['--variants', 'turbo,nope'], "variant 'nope' is not used by any file"],
    [['--sage-wheel-url', 'https://x/w.whl'], '--sage-wheel-url needs --sage-wheel-sha256'],
    [['--hf-token-file', '/nonexistent/token'], "--hf-token-file '/nonexistent/token' does not exist"],
    [['--version', 'bad tag!'], "'bad tag!-fp8-baked' is not a valid image tag"],
    [['--push'], '--push needs --repo with a registry repository'],
    [['--push', '--repo', 'steadydancer'], '--push needs --repo with a registry repository'],
    [['--turbodiffusion'], "unknown option '--turbodiffusion'"],
    [['--bogus'], "unknown option '--bogus'"],
    [['--repo'], '--repo needs a value'],
  ])('refuses %j', async (args, message) => {
    const r = await dryRun(args);
    expect(r.code).toBe(2);
    expect(r.out).toContain(message);
    expect(r.out).not.toContain('would run');
  });
});

describe('builder/build.sh for real, against a recording docker', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sd-build-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A `docker` that logs its arguments; `buildx version` fails unless BUILDX=1; the tag exists if EXISTS=1. */
  function fakeDocker(): string {
    const bin = path.join(dir, 'bin');
    writeFileSync(
      path.join(dir, 'docker'),
      `#!/bin/sh
echo "$*" >> "${dir}/calls"
case "$1 $2" in
  "buildx version") [ "$BUILDX" = 1 ] && echo "github.com/docker/buildx v0.29.1" && exit 0; echo "docker: 'buildx' is not a docker command." >&2; exit 1 ;;
  "buildx imagetools")
    if [ "$3" = inspect ] && [ "$4" = --raw ]; then echo '{"config":{"size":1000},"layers":[{"size":2500000000},{"size":1500000000}]}'; exit 0; fi
    [ "$EXISTS" = 1 ] && exit 0; exit 1 ;;
  "image inspect") echo 5000000000; exit 0 ;;
esac
exit 0
`,
    );
    chmodSync(path.join(dir, 'docker'), 0o755);
    void bin;
    return dir;
  }

  async function build(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string; calls: string[] }> {
    rmSync(path.join(dir, 'calls'), { force: true });
    const { HF_TOKEN: _drop, ...base } = process.env;
    const r = await run('bash', [path.join(ROOT, 'builder/build.sh'), '--version', '9.9.9', ...args], {
      env: { ...base, PATH: `${fakeDocker()}:${process.env.PATH}`, ...env },
    });
    const calls = existsSync(path.join(dir, 'calls')) ? readFileSync(path.join(dir, 'calls'), 'utf8').trim().split('\n') : [];
    return { code: r.code, out: r.stdout + r.stderr, calls };
  }

  it('checks that buildx is there before building anything', async () => {
    const r = await build([], { BUILDX: '0' });
    expect(r.code).toBe(2);
    expect(r.out).toContain('docker buildx is not available');
    expect(r.calls).toEqual(['buildx version']);
  });

  it('refuses to push over an existing tag, and builds nothing', async () => {
    const r = await build(['--push', '--repo', 'ghcr.io/me/sd'], { BUILDX: '1', EXISTS: '1' });
    expect(r.code).toBe(2);
    expect(r.out).toContain('ghcr.io/me/sd:9.9.9-fp8-baked already exists in the registry');
    expect(r.calls.some((c) => c.startsWith('buildx build'))).toBe(false);
  });

  it('pushes with buildx and prints the compressed size of the pushed layers', async () => {
    const r = await build(['--push', '--repo', 'ghcr.io/me/sd', '--models', 'volume'], { BUILDX: '1', EXISTS: '0' });
    expect(r.code).toBe(0);
    expect(r.calls.map((c) => c.split(' ').slice(0, 3).join(' '))).toEqual([
      'buildx version',
      'buildx imagetools inspect',
      'buildx build --platform',
      'buildx imagetools inspect',
    ]);
    expect(r.calls[2]).toContain('--tag ghcr.io/me/sd:9.9.9-volume --push');
    expect(r.out).toContain('size: 4000 MB compressed in the registry');
  });

  it('loads a local build and prints its size', async () => {
    const r = await build([], { BUILDX: '1' });
    expect(r.code).toBe(0);
    expect(r.calls.at(-1)).toBe('image inspect --format {{.Size}} steadydancer-worker:9.9.9-fp8-baked');
    expect(r.out).toContain('size: 5000 MB uncompressed');
  });
});

/** Env var names src/config.ts reads. */
function configEnvNames(): Set<string> {
  return new Set(ENV_VARS);
}

interface Hub {
  type: string;
  category: string;
  config: {
    runsOn: string;
    containerDiskInGb: number;
    gpuIds: string;
    gpuCount: number;
    allowedCudaVersions: string[];
    env: { key: string; input?: { type: string; default?: unknown }; value?: string }[];
  };
}
interface HubTests {
  tests: { name: string; input: Record<string, unknown>; timeout: number }[];
  config: { gpuTypeId: string; gpuCount: number; env: { key: string; value: string }[]; allowedCudaVersions: string[] };
}

describe('.runpod/', () => {
  const hub = readJson<Hub>('.runpod/hub.json');
  const tests = readJson<HubTests>('.runpod/tests.json');
  const envNames = configEnvNames();
  const pinnedCuda = Number(pins.python.cuda);
  // Compute capability of every GPU in a pool (RunPod's GPU pools reference).
  const POOL_ARCHS: Record<string, string[]> = {
    AMPERE_48: ['8.6'],
    ADA_48_PRO: ['8.9'],
    AMPERE_80: ['8.0'],
    ADA_80_PRO: ['9.0'],
    HOPPER_141: ['9.0'],
  };

  it('holds what RunPod’s Hub reads: hub.json, tests.json and a short README of its own', () => {
    for (const f of ['hub.json', 'tests.json', 'README.md']) expect(existsSync(path.join(ROOT, '.runpod', f))).toBe(true);
    const readme = read('.runpod/README.md');
    expect(readme.split('\n').length).toBeLessThan(80);
    for (const e of hub.config.env.filter((x) => !x.input || x.input.default === '')) {
      if (/^BUCKET_(ENDPOINT_URL|NAME|ACCESS_KEY_ID|SECRET_ACCESS_KEY)$/.test(e.key)) expect(readme).toContain(e.key);
    }
  });

  it('tests.json is one small, fast job of the real schema (a Hub test renders on a cold worker)', () => {
    const schema = createJobInputSchema(VARIANTS, DEFAULT_VARIANT, { maxPromptChars: MAX_PROMPT_CHARS, maxSeed: MAX_SEED });
    expect(tests.tests).toHaveLength(1);
    for (const t of tests.tests) {
      expect({ test: t.name, problems: parseProblems(schema, t.input) }).toEqual({ test: t.name, problems: '' });
      const input = t.input as { variant: string; num_frames: number; width: number; height: number };
      expect(input.variant).toBe('turbo');
      expect(input.num_frames).toBeLessThanOrEqual(17);
      expect(input.width * input.height).toBeLessThanOrEqual(288 * 512);
      // cold start + model load + the job, within RunPod's default 600 s execution timeout
      expect(t.timeout).toBeGreaterThanOrEqual(5 * 60_000);
      expect(t.timeout).toBeLessThanOrEqual(10 * 60_000);
    }
  });

  it('JOB_TIMEOUT_S stays under RunPod’s default execution timeout (600 s), by default and in the Hub', () => {
    const def = hub.config.env.find((e) => e.key === 'JOB_TIMEOUT_S')!.input!.default as number;
    expect(def).toBeLessThan(600);
    expect(Number(tests.config.env.find((e) => e.key === 'JOB_TIMEOUT_S')!.value)).toBeLessThan(600);
    expect(read('src/config.ts')).toMatch(new RegExp(`JOB_TIMEOUT_S: int\\(${def},`));
  });

  it('every GPU pool hub.json offers has kernels in the image (pins.json gpu.arch_list)', () => {
    const archs = pins.gpu.arch_list.split(';');
    for (const pool of hub.config.gpuIds.split(',')) {
      expect({ pool, archs: (POOL_ARCHS[pool] ?? ['unknown pool']).filter((a) => !archs.includes(a)) }).toEqual({ pool, archs: [] });
    }
  });

  it('hub.json is a GPU serverless video worker on GPUs with room for the fp8 14B model', () => {
    expect(hub.type).toBe('serverless');
    expect(hub.category).toBe('video');
    expect(hub.config.runsOn).toBe('GPU');
    expect(hub.config.gpuCount).toBe(1);
    // ≥ 48 GB pools only: 24 GB cards need block swap, which the default graph does not use.
    expect(hub.config.gpuIds.split(',').every((id) => /^(ADA_48_PRO|AMPERE_48|AMPERE_80|ADA_80_PRO|HOPPER_141)$/.test(id))).toBe(true);
    expect(hub.config.containerDiskInGb).toBeGreaterThanOrEqual(20);
  });

  it('CUDA versions are strings no older than the CUDA the torch wheels are built for', () => {
    for (const list of [hub.config.allowedCudaVersions, tests.config.allowedCudaVersions]) {
      expect(list.length).toBeGreaterThan(0);
      for (const v of list) {
        expect(typeof v).toBe('string');
        expect(Number(v)).toBeGreaterThanOrEqual(pinnedCuda);
      }
    }
  });

  it('every env var offered is one src/config.ts reads; no secret has a default', () => {
    for (const e of [...hub.config.env, ...tests.config.env]) {
      expect({ key: e.key, known: envNames.has(e.key) }).toEqual({ key: e.key, known: true });
    }
    for (const e of hub.config.env.filter((x) => /SECRET|KEY_ID/.test(x.key))) expect(e.input?.default).toBe('');
  });

  it('tests.json runs on a GPU of a pool hub.json allows', () => {
    const poolOf: Record<string, string> = {
      'NVIDIA L40S': 'ADA_48_PRO',
      'NVIDIA RTX 6000 Ada Generation': 'ADA_48_PRO',
      'NVIDIA L40': 'ADA_48_PRO',
      'NVIDIA RTX A6000': 'AMPERE_48',
      'NVIDIA A40': 'AMPERE_48',
      'NVIDIA A100 80GB PCIe': 'AMPERE_80',
      'NVIDIA A100-SXM4-80GB': 'AMPERE_80',
      'NVIDIA H100 80GB HBM3': 'ADA_80_PRO',
      'NVIDIA H100 PCIe': 'ADA_80_PRO',
      'NVIDIA H200': 'HOPPER_141',
    };
    expect(hub.config.gpuIds.split(',')).toContain(poolOf[tests.config.gpuTypeId]);
  });
});

/** '' when the input parses, else the INVALID_INPUT message naming each bad field. */
function parseProblems(schema: JobInputSchema<VariantName>, input: unknown): string {
  try {
    parseJobInput(schema, VARIANTS, input, () => 0);
    return '';
  } catch (err) {
    if (isWorkerError(err, 'INVALID_INPUT')) return err.message;
    throw err;
  }
}
