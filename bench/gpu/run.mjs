#!/usr/bin/env node
/* global fetch, setTimeout */
// GPU benchmark runner: runs the worker bundle itself (local API mode, ComfyUI spawned by the worker,
// as in the image) for one variant under one or more settings ("arms"), and writes one JSON result per
// arm into bench/results/. Per arm: a fresh worker process, one cold job (process start -> result),
// then warm jobs; per-node and per-step times from the steadydancer_runtime ComfyUI hook, peak VRAM
// from nvidia-smi and PyTorch, the output's ffprobe.
//
//   node bench/gpu/run.mjs --variant turbo --frames 81 --warm 2 \
//     --arm 'resident-sage:VRAM_MODE=high' --arm 'offload-sdpa:VRAM_MODE=low,ATTENTION_MODE=sdpa'
//   node bench/gpu/run.mjs --precision gguf-q5_k_m --warm 1 --arm 'cap16-auto:STEADYDANCER_GPU_MEMORY_GB=15.5'
//
// Needs (bench/gpu/README.md): COMFYUI_DIR with the pinned packs and custom_nodes/steadydancer_runtime,
// COMFYUI_PYTHON, MODELS_DIR filled by make_weights.py, ffmpeg and ffprobe on PATH, dist/handler.cjs.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { summarizeTimings } from './summarize.mjs';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const { values: opt } = parseArgs({
  options: {
    variant: { type: 'string', default: 'turbo' },
    frames: { type: 'string', default: '81' },
    width: { type: 'string', default: '480' },
    height: { type: 'string', default: '832' },
    precision: { type: 'string', default: process.env.MODEL_PRECISION ?? 'fp8' },
    warm: { type: 'string', default: '2' },
    arm: { type: 'string', multiple: true, default: ['default:'] },
    out: { type: 'string', default: path.join(root, 'bench/results') },
    work: { type: 'string', default: '/tmp/sd-bench' },
    label: { type: 'string', default: '' },
    'job-timeout-s': { type: 'string', default: '900' },
    // One more job after the measured ones, its second transformer pass profiled (steadydancer_runtime's
    // step_profile.py): profile-<arm>.txt and .trace.json.gz in --out. Kind "profiled", so no table figure.
    profile: { type: 'boolean', default: false },
  },
});

const work = path.resolve(opt.work);
// With --profile, the job after the measured ones (1 cold + --warm warm), counted from 1 as ComfyUI's prompts.
const profiledPrompt = opt.profile ? Number(opt.warm) + 2 : undefined;
mkdirSync(work, { recursive: true });
mkdirSync(opt.out, { recursive: true });

function sh(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

function makeInputs() {
  const ref = path.join(work, 'reference.png');
  const pose = path.join(work, `pose-${opt.frames}.mp4`);
  if (!existsSync(ref)) {
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=${opt.width}x${opt.height}`, '-frames:v', '1', ref]);
  }
  if (!existsSync(pose)) {
    execFileSync('ffmpeg', [
      '-v',
      'error',
      '-y',
      '-f',
      'lavfi',
      '-i',
      `testsrc2=size=${opt.width}x${opt.height}:rate=16`,
      '-frames:v',
      opt.frames,
      '-pix_fmt',
      'yuv420p',
      '-c:v',
      'libx264',
      pose,
    ]);
  }
  const uri = (file, type) => `data:${type};base64,${readFileSync(file).toString('base64')}`;
  return { reference_image: uri(ref, 'image/png'), pose_video: uri(pose, 'video/mp4') };
}

/** Samples the card's used memory every 200 ms; returns the peak (MiB) on stop. */
function vramSampler() {
  let peak = 0;
  const child = spawn('nvidia-smi', ['--query-gpu=memory.used', '--format=csv,noheader,nounits', '-lms', '200'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  child.stdout.on('data', (d) => {
    for (const v of d.toString().split('\n')) if (Number(v) > peak) peak = Number(v);
  });
  child.on('error', () => {});
  return { peak: () => peak, reset: () => (peak = 0), stop: () => child.kill() };
}

function environment() {
  const gpu = sh('nvidia-smi', ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader']);
  const py = process.env.COMFYUI_PYTHON ?? 'python3';
  const versions = sh(py, [
    '-c',
    [
      'import json,sys,importlib.metadata as m',
      'v=lambda n: (m.version(n) if n in {d.metadata["Name"].lower() for d in m.distributions()} else None)',
      'import torch,triton',
      'print(json.dumps({"python":sys.version.split()[0],"torch":torch.__version__,"cuda":torch.version.cuda,"cudnn":torch.backends.cudnn.version(),"triton":triton.__version__,"sageattention":v("sageattention"),"onnxruntime":v("onnxruntime") or v("onnxruntime-gpu"),"transformers":v("transformers")}))',
    ].join('\n'),
  ]);
  const head = sh('git', ['-C', root, 'rev-parse', '--short', 'HEAD']);
  return {
    gpu,
    versions: versions ? JSON.parse(versions) : null,
    node: process.version,
    // "-dirty" when the tree differs from that commit: the device machine's copy carries this session's
    // working tree over the git history it started with, so there HEAD alone can name an older commit.
    commit: head && `${head}${sh('git', ['-C', root, 'status', '--porcelain', '--untracked-files=no']) ? '-dirty' : ''}`,
  };
}

async function waitFor(check, timeoutMs, what) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const r = await check();
    if (r) return r;
    await new Promise((res) => setTimeout(res, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function runJob(base, input) {
  const started = Date.now();
  const res = await fetch(`${base}/run`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ input }),
  });
  const { id } = await res.json();
  const status = await waitFor(
    async () => {
      const s = await (await fetch(`${base}/status/${id}`)).json();
      return ['COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT'].includes(s.status) ? s : null;
    },
    Number(opt['job-timeout-s']) * 1000,
    `job ${id}`,
  );
  return { id, status: status.status, seconds: (Date.now() - started) / 1000, output: status.output, error: status.error };
}

function ffprobe(file) {
  const out = sh('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_streams', '-show_format', file]);
  if (!out) return null;
  const j = JSON.parse(out);
  const v = j.streams.find((s) => s.codec_type === 'video');
  return v
    ? {
        codec: v.codec_name,
        pix_fmt: v.pix_fmt,
        width: v.width,
        height: v.height,
        frames: Number(v.nb_frames),
        fps: v.r_frame_rate,
        bytes: Number(j.format.size),
      }
    : null;
}

function newestMp4(dir) {
  if (!existsSync(dir)) return null;
  const mp4s = readdirSync(dir, { recursive: true })
    .filter((f) => String(f).endsWith('.mp4'))
    .map((f) => path.join(dir, String(f)));
  return mp4s.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0] ?? null;
}

function parseArm(spec) {
  const [name, envs = ''] = spec.split(/:(.*)/s);
  const env = {};
  for (const kv of envs.split(',').filter(Boolean)) {
    const [k, ...v] = kv.split('=');
    env[k] = v.join('=');
  }
  return { name, env };
}

async function runArm(arm, input, envInfo, port) {
  const timings = path.join(work, `timings-${arm.name}.jsonl`);
  const logFile = path.join(work, `worker-${arm.name}.log`);
  rmSync(timings, { force: true });
  const outputDir = path.join(work, `output-${arm.name}`);
  // Each arm starts as a fresh container of a baked image would: no prompt embeddings on disk yet.
  const textEmbeds = path.join(work, `text-embeds-${arm.name}`);
  rmSync(textEmbeds, { recursive: true, force: true });
  const env = {
    ...process.env,
    MODEL_PRECISION: opt.precision,
    OUTPUT_DIR: outputDir,
    COMFYUI_PORT: String(port + 1),
    TEXT_EMBED_CACHE_DIR: textEmbeds,
    STEADYDANCER_TIMINGS_FILE: timings,
    JOB_TIMEOUT_S: opt['job-timeout-s'],
    ...(opt.profile && {
      STEADYDANCER_PROFILE_FILE: path.join(path.resolve(opt.out), `profile-${arm.name}.txt`),
      STEADYDANCER_PROFILE_PROMPT: String(profiledPrompt),
    }),
    ...arm.env,
  };
  const vram = vramSampler();
  const t0 = Date.now();
  const child = spawn(process.execPath, [path.join(root, 'dist/handler.cjs'), '--rp_serve_api', '--rp_api_port', String(port)], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs = [];
  const onData = (d) => {
    for (const line of d.toString().split('\n').filter(Boolean)) logs.push(line);
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const base = `http://127.0.0.1:${port}`;
  const result = {
    arm: arm.name,
    settings: arm.env,
    variant: opt.variant,
    frames: Number(opt.frames),
    width: Number(opt.width),
    height: Number(opt.height),
    precision: opt.precision,
    environment: envInfo,
    jobs: [],
  };
  try {
    await waitFor(
      () =>
        fetch(`${base}/health`).then(
          (r) => r.ok,
          () => false,
        ),
      60_000,
      'the local API',
    );
    const jobInput = {
      ...input,
      variant: opt.variant,
      num_frames: Number(opt.frames),
      width: Number(opt.width),
      height: Number(opt.height),
      seed: 1,
    };
    const jobs = profiledPrompt ?? Number(opt.warm) + 1;
    for (let i = 0; i < jobs; i++) {
      vram.reset();
      const job = await runJob(base, jobInput);
      const video = job.output?.videos?.[0];
      const kind = i === 0 ? 'cold' : i <= Number(opt.warm) ? 'warm' : 'profiled';
      result.jobs.push({
        kind,
        status: job.status,
        seconds: i === 0 ? (Date.now() - t0) / 1000 : job.seconds,
        request_seconds: job.seconds,
        timings_ms: job.output?.timings_ms,
        error: job.error,
        peak_vram_mib_nvidia_smi: vram.peak(),
        ffprobe: video ? ffprobe(newestMp4(outputDir)) : null,
      });
      process.stdout.write(`${arm.name} job ${i} (${kind}): ${job.status} ${job.seconds.toFixed(1)} s\n`);
      if (job.status !== 'COMPLETED') break;
    }
  } catch (err) {
    result.error = String(err);
  } finally {
    child.kill('SIGTERM');
    await new Promise((res) => child.once('exit', res));
    vram.stop();
  }
  result.worker_log = path.basename(logFile);
  writeFileSync(logFile, logs.join('\n'));
  const parsedLogs = logs
    .map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        return null;
      }
    })
    .filter(Boolean);
  const at = (re) => parsedLogs.find((l) => re.test(l.message ?? ''));
  const start = at(/^starting ComfyUI/i);
  const ready = at(/^ComfyUI is ready/i);
  if (start && ready) result.comfyui_boot_s = (Date.parse(ready.time) - Date.parse(start.time)) / 1000;
  const engine = at(/^engine settings|SageAttention failed the start-up check/);
  if (engine) {
    result.engine = {
      attention: engine.attention,
      residentModel: engine.residentModel,
      memoryMode: engine.memoryMode,
      blockSwap: engine.blockSwap,
      vaeTilingAbovePixels: engine.vaeTilingAbovePixels,
      memoryGiB: engine.memoryGiB,
      memoryCapGiB: engine.memoryCapGiB,
      reasons: engine.reasons,
    };
  }
  if (existsSync(timings)) Object.assign(result, summarizeTimings(readFileSync(timings, 'utf8'), result.jobs.length, profiledPrompt));
  return result;
}

const input = makeInputs();
const envInfo = environment();
let port = 18300;
for (const spec of opt.arm) {
  const arm = parseArm(spec);
  const result = await runArm(arm, input, envInfo, port);
  port += 2;
  result.finished = new Date().toISOString();
  const name = `gpu-${opt.variant}-${opt.frames}f-${opt.precision}-${arm.name}${opt.label ? `-${opt.label}` : ''}.json`;
  writeFileSync(path.join(opt.out, name), `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(
    `wrote ${name}\n${JSON.stringify({ arm: arm.name, jobs: result.jobs.map((j) => [j.kind, j.status, j.seconds]), s_per_step: result.sampler?.s_per_step_steady, boot: result.comfyui_boot_s, error: result.error })}\n`,
  );
}
