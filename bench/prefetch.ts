// Cold start with and without the model prefetch (src/workflow/prefetch.ts), on a cold page cache: a real
// ComfyUI (the CPU is enough) boots and then runs the pose node on one frame, which loads the pose models
// (ViTPose-H: 2.4 GiB). With prefetch, the worker's own function reads the files it would pick
// (modelFilesInLoadOrder: here only the pose files exist) while ComfyUI boots, as handler/app.ts does.
// Measures process start -> prompt done, and the loader's and pose node's own times (the ComfyUI hook's timings).
// Needs root (it empties the page cache through /proc/sys/vm/drop_caches before each run).
//
//   python bench/gpu/make_weights.py --comfy-dir C --root M --only yolov10m,vitpose-h-model,vitpose-h-data --pose-size real
//   npm run bench:prefetch -- --comfy-dir C --models M [--python P] [--out bench/results/prefetch.json]
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { modelFilesInLoadOrder, prefetchBudgetBytes, prefetchFiles, type PrefetchResult } from '../src/workflow/prefetch';

const { values: a } = parseArgs({
  options: {
    'comfy-dir': { type: 'string' },
    models: { type: 'string' },
    python: { type: 'string', default: 'python3' },
    port: { type: 'string', default: '8197' },
    repeat: { type: 'string', default: '2' },
    out: { type: 'string' },
  },
});
if (!a['comfy-dir'] || !a.models) throw new Error('--comfy-dir and --models are required');
const comfyDir = path.resolve(a['comfy-dir']);
const models = path.resolve(a.models);
const base = `http://127.0.0.1:${a.port}`;

function dropPageCache(): void {
  spawnSync('sync');
  writeFileSync('/proc/sys/vm/drop_caches', '3\n');
}

async function waitFor(check: () => Promise<boolean>, seconds: number): Promise<void> {
  for (let i = 0; i < seconds * 4; i++) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`gave up after ${seconds} s`);
}

function prompt() {
  return {
    '1': { class_type: 'LoadImage', inputs: { image: 'prefetch-bench-ref.png' } },
    '3': {
      class_type: 'OnnxDetectionModelLoader',
      inputs: {
        vitpose_model: 'onnx/vitpose_h_wholebody_model.onnx',
        yolo_model: 'onnx/yolov10m.onnx',
        onnx_device: 'CPUExecutionProvider',
      },
    },
    '4': {
      class_type: 'PoseDetectionOneToAllAnimation',
      inputs: {
        model: ['3', 0],
        images: ['1', 0],
        width: 480,
        height: 832,
        align_to: 'ref',
        draw_face_points: 'full',
        draw_head: 'full',
        ref_image: ['1', 0],
      },
    },
    '5': { class_type: 'PreviewImage', inputs: { images: ['4', 0] } },
  };
}

async function runOnce(work: string, withPrefetch: boolean) {
  dropPageCache();
  const timings = path.join(work, `timings-${withPrefetch}.jsonl`);
  rmSync(timings, { force: true });
  const started = performance.now();
  const comfy = spawn(
    a.python,
    [
      'main.py',
      '--cpu',
      '--listen',
      '127.0.0.1',
      '--port',
      a.port,
      '--disable-api-nodes',
      '--extra-model-paths-config',
      path.join(work, 'paths.yaml'),
      '--front-end-root',
      work,
    ],
    { cwd: comfyDir, env: { ...process.env, STEADYDANCER_TIMINGS_FILE: timings }, stdio: ['ignore', 'ignore', 'ignore'] },
  );
  let prefetched: Promise<PrefetchResult> | undefined;
  if (withPrefetch) {
    const files = modelFilesInLoadOrder('turbo', 'fp8', [models]);
    prefetched = prefetchFiles({ files, budgetBytes: prefetchBudgetBytes() });
  }
  try {
    await waitFor(async () => (await fetch(`${base}/system_stats`)).ok, 300);
    const bootS = (performance.now() - started) / 1000;
    const res = await fetch(`${base}/prompt`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: prompt() }),
    });
    if (!res.ok) throw new Error(`/prompt answered ${res.status}: ${await res.text()}`);
    await waitFor(async () => existsSync(timings) && readFileSync(timings, 'utf8').includes('prompt_end'), 600);
    const totalS = (performance.now() - started) / 1000;
    const nodes = readFileSync(timings, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { ev: string; class?: string; t0?: number; t1?: number })
      .filter((e) => e.ev === 'node');
    const nodeS = (cls: string) =>
      Number((nodes.filter((n) => n.class === cls).map((n) => (n.t1 ?? 0) - (n.t0 ?? 0))[0] ?? NaN).toFixed(2));
    const p = await prefetched;
    return {
      prefetch: withPrefetch,
      boot_s: Number(bootS.toFixed(2)),
      // the loader creates both ONNX sessions: where the model files are read
      loader_node_s: nodeS('OnnxDetectionModelLoader'),
      pose_node_s: nodeS('PoseDetectionOneToAllAnimation'),
      start_to_result_s: Number(totalS.toFixed(2)),
      ...(p
        ? { prefetched: { files: p.files, gib: Number((p.bytes / 1024 ** 3).toFixed(2)), seconds: Number(p.seconds.toFixed(2)) } }
        : {}),
    };
  } finally {
    comfy.kill('SIGTERM');
    await new Promise((r) => comfy.once('exit', r));
  }
}

const work = mkdtempSync(path.join(os.tmpdir(), 'prefetch-bench-'));
try {
  writeFileSync(
    path.join(work, 'paths.yaml'),
    `bench:\n  base_path: ${models}\n  detection: detection\n  custom_nodes: ${path.resolve('docker/comfyui')}\n`,
  );
  writeFileSync(path.join(work, 'index.html'), '<html></html>');
  // The reference image: a mid-grey PNG through ComfyUI's own input folder.
  spawnSync(a.python, [
    '-c',
    `from PIL import Image; Image.new("RGB", (480, 832), (128, 128, 128)).save(${JSON.stringify(path.join(comfyDir, 'input', 'prefetch-bench-ref.png'))})`,
  ]);
  const runs: Awaited<ReturnType<typeof runOnce>>[] = [];
  for (let i = 0; i < Number(a.repeat); i++) for (const withPrefetch of [false, true]) runs.push(await runOnce(work, withPrefetch));
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number;
  const of = (p: boolean) => runs.filter((r) => r.prefetch === p).map((r) => r.start_to_result_s);
  const result = {
    runs,
    median_start_to_result_s: { without: median(of(false)), with: median(of(true)) },
    machine: `${os.arch()}, ${os.cpus().length} CPUs, ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB`,
    node: process.version,
    models: 'make_weights.py --pose-size real stand-ins (ViTPose-H 2.4 GiB, yolov10m 60 MiB), CPU provider',
  };
  console.log(JSON.stringify(result, null, 2));
  if (a.out) writeFileSync(a.out, `${JSON.stringify(result, null, 2)}\n`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
