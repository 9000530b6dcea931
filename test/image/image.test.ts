// The Dockerfile, the compose file, builder/build.sh and .runpod/ agree with the rest of the repo.
import { describe, expect, it } from '@jest/globals';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ENV_VARS } from '../../src/config';
import { createJobInputSchema, parseJobInput, type JobInputSchema } from '../../src/job/schema';
import { isWorkerError } from '../../src/lib/errors';
import { DEFAULT_VARIANT, VARIANTS, type VariantName } from '../../src/workflow';
import { ROOT, read, readJson, run, type ModelManifest, type Pins } from './helpers';

const dockerfile = read('docker/Dockerfile');
const manifest = readJson<ModelManifest>('workflows/models.json');
const pins = readJson<Pins>('workflows/pins.json');

/** Dockerfile lines with `\` continuations joined. */
const instructions = dockerfile.replace(/\\\n/g, ' ').split('\n').filter((l) => l.trim() && !l.startsWith('#'));

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
    expect(compose).toMatch(/context: \.\.\n\s+dockerfile: docker\/Dockerfile/);
    expect(compose).toMatch(/driver: nvidia/);
  });
});

describe('docker/Dockerfile', () => {
  it('copies only files that exist and that docker/Dockerfile.dockerignore lets into the context', () => {
    const allowed = read('docker/Dockerfile.dockerignore').split('\n').filter((l) => l.startsWith('!')).map((l) => l.slice(1));
    const sources = instructions
      .filter((l) => l.startsWith('COPY ') && !l.includes('--from='))
      .flatMap((l) => l.split(/\s+/).slice(1, -1));
    expect(sources.length).toBeGreaterThan(10);
    for (const src of sources) {
      expect({ src, exists: existsSync(path.join(ROOT, src)) }).toEqual({ src, exists: true });
      const included = allowed.some((a) => (a.endsWith('/') ? src === a.slice(0, -1) || src.startsWith(a) : src === a));
      expect({ src, included }).toEqual({ src, included: true });
    }
  });

  it('has a devel stage for kernels and a CUDA runtime final image, amd64 kernels for the listed GPUs', () => {
    expect(dockerfile).toMatch(/FROM nvidia\/cuda:\S+-devel-\S+ AS python-build/);
    expect(dockerfile).toMatch(/FROM nvidia\/cuda:\S+-cudnn-runtime-\S+ AS runtime-base/);
    expect(dockerfile).toMatch(/ARG TORCH_CUDA_ARCH_LIST="8\.0;8\.6;8\.9;9\.0;10\.0;12\.0"/);
    expect(dockerfile).toContain('ffmpeg');
  });

  it('passes the Hugging Face token only as a build secret', () => {
    expect(dockerfile).toContain('--mount=type=secret,id=hf_token');
    expect(dockerfile).not.toMatch(/ARG HF_TOKEN|ENV HF_TOKEN/);
  });

  it('keeps TurboDiffusion off by default and selects stages by build arg', () => {
    expect(dockerfile).toMatch(/^ARG TURBODIFFUSION=0$/m);
    expect(dockerfile).toMatch(/^ARG MODELS=baked$/m);
    expect(dockerfile).toContain('FROM python-stack-${TURBODIFFUSION} AS python-stack');
    expect(dockerfile).toContain('FROM models-${MODELS} AS final');
    for (const stage of ['python-stack-0', 'python-stack-1', 'models-volume', 'models-baked']) {
      expect(dockerfile).toMatch(new RegExp(`^FROM \\S+ AS ${stage}$`, 'm'));
    }
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
  const buildArgs = Object.fromEntries(
    [...r.stdout.matchAll(/^build-arg: ([A-Z0-9_]+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]),
  );
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

  it.each(precisions)('baked %s: immutable tag, linux/amd64, build args the Dockerfile declares', async (precision) => {
    const r = await dryRun(['--precision', precision, '--version', '1.2.3', '--repo', 'registry.example/me/sd']);
    expect(r.code).toBe(0);
    expect(r.tag).toBe(`registry.example/me/sd:1.2.3-${precision}-baked`);
    expect(r.buildArgs).toEqual({ MODELS: 'baked', PRECISION: precision, VARIANTS: 'all', TURBODIFFUSION: '0' });
    for (const key of Object.keys(r.buildArgs)) expect(dockerArgs.has(key)).toBe(true);
    expect(r.command).toBe(
      `docker buildx build --platform linux/amd64 --file ${ROOT}/docker/Dockerfile --tag ${r.tag} --load ` +
        Object.entries(r.buildArgs).map(([k, v]) => `--build-arg ${k}=${v}`).join(' ') + ` ${ROOT}`,
    );
    expect(r.out).not.toContain('docker push');
  });

  it.each(variants)('baked with only variant %s: tag and VARIANTS name it', async (variant) => {
    const r = await dryRun(['--variants', variant, '--version', '1.2.3']);
    expect(r.code).toBe(0);
    expect(r.tag).toBe(`steadydancer-worker:1.2.3-fp8-baked-${variant}`);
    expect(r.buildArgs.VARIANTS).toBe(variant);
  });

  it('volume image: one precision-free tag, TurboDiffusion flag, push with an existence check first', async () => {
    const r = await dryRun(['--models', 'volume', '--turbodiffusion', '--push', '--version', '2.0.0']);
    expect(r.code).toBe(0);
    expect(r.tag).toBe('steadydancer-worker:2.0.0-volume-td');
    expect(r.buildArgs).toMatchObject({ MODELS: 'volume', TURBODIFFUSION: '1' });
    expect(r.out).toContain(`would check: docker buildx imagetools inspect ${r.tag} (must not exist)`);
    expect(r.out).toContain(`would run: docker push ${r.tag}`);
    expect(r.out).toMatch(/would print: the image size/);
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
    expect(r.buildArgs).toMatchObject({ SAGEATTENTION_WHEEL_URL: 'https://x/w.whl', SAGEATTENTION_WHEEL_SHA256: sha, TORCH_CUDA_ARCH_LIST: '9.0' });
    for (const key of Object.keys(r.buildArgs)) expect(dockerArgs.has(key)).toBe(true);
  });

  it.each([
    [['--precision', 'int3'], "no file in workflows/models.json has precision 'int3'"],
    [['--models', 'cloud'], "--models must be baked or volume, got 'cloud'"],
    [['--variants', 'turbo,nope'], "variant 'nope' is not used by any file"],
    [['--sage-wheel-url', 'https://x/w.whl'], '--sage-wheel-url needs --sage-wheel-sha256'],
    [['--hf-token-file', '/nonexistent/token'], "--hf-token-file '/nonexistent/token' does not exist"],
    [['--version', 'bad tag!'], "'bad tag!-fp8-baked' is not a valid image tag"],
    [['--bogus'], "unknown option '--bogus'"],
    [['--repo'], '--repo needs a value'],
  ])('refuses %j', async (args, message) => {
    const r = await dryRun(args);
    expect(r.code).toBe(2);
    expect(r.out).toContain(message);
    expect(r.out).not.toContain('would run');
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
    env: { key: string; input?: { type: string; default?: unknown } ; value?: string }[];
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
  const pinnedCuda = Number(/cu(\d+)(\d)\/?$/.exec(pins.python.torch_index)!.slice(1).join('.'));

  it('tests.json inputs are valid job inputs of the real schema, with a long enough timeout', () => {
    const schema = createJobInputSchema(VARIANTS, DEFAULT_VARIANT);
    expect(tests.tests.length).toBeGreaterThan(0);
    for (const t of tests.tests) {
      expect({ test: t.name, problems: parseProblems(schema, t.input) }).toEqual({ test: t.name, problems: '' });
      expect(t.timeout).toBeGreaterThanOrEqual(10 * 60_000); // cold start + model load + the job
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
      'NVIDIA L40S': 'ADA_48_PRO', 'NVIDIA RTX 6000 Ada Generation': 'ADA_48_PRO', 'NVIDIA L40': 'ADA_48_PRO',
      'NVIDIA RTX A6000': 'AMPERE_48', 'NVIDIA A40': 'AMPERE_48',
      'NVIDIA A100 80GB PCIe': 'AMPERE_80', 'NVIDIA A100-SXM4-80GB': 'AMPERE_80',
      'NVIDIA H100 80GB HBM3': 'ADA_80_PRO', 'NVIDIA H100 PCIe': 'ADA_80_PRO',
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
