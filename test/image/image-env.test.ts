// Opt-in (builder/check_image_env.sh runs it): the image's Python environment, built with the image's own
// install steps, starts ComfyUI on the CPU with every pinned custom node without an import failure, and
// ComfyUI's own validation (POST /prompt) accepts every variant's graph at every precision, filled by the
// worker's buildPrompt with each variant's defaults. Placeholder (empty) model files stand at the manifest
// paths; validation checks names, types and links, and nothing is run (each accepted prompt is removed).
// Skipped unless IMAGE_ENV_COMFYUI_DIR (the ComfyUI checkout) and IMAGE_ENV_PYTHON (the env's python) are set.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ComfyEndpoint } from '../../src/comfy/endpoint';
import { ComfySupervisor } from '../../src/comfy/supervisor';
import { createLogger } from '../../src/lib/logger';
import { MODEL_FILES, VARIANTS, buildPrompt, type Precision, type VariantName } from '../../src/workflow';
import { freePort } from '../support/free-port';
import { lavfiInput } from '../media/fixtures';
import { paramsFor } from '../workflow/fixtures';

const comfyDir = process.env.IMAGE_ENV_COMFYUI_DIR;
const python = process.env.IMAGE_ENV_PYTHON;
const suite = comfyDir && python ? describe : describe.skip;
const ffmpegPath = (createRequire(import.meta.url)('@ffmpeg-installer/ffmpeg') as { path: string }).path;

const PRECISIONS = [...new Set(MODEL_FILES.flatMap((f) => f.precisions))] as Precision[];
const VARIANT_NAMES = Object.keys(VARIANTS) as VariantName[];
const REQUIRED_CLASSES = [...new Set(VARIANT_NAMES.flatMap((v) => VARIANTS[v].requiredNodeClasses))];

suite('the image environment on the CPU (opt-in)', () => {
  let root: string;
  let supervisor: ComfySupervisor;
  let endpoint: ComfyEndpoint;
  const output: string[] = [];
  let bootSeconds = 0;

  beforeAll(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'image-env-'));
    const models = path.join(root, 'models');
    for (const f of MODEL_FILES) {
      mkdirSync(path.dirname(path.join(models, f.folder, f.path)), { recursive: true });
      writeFileSync(path.join(models, f.folder, f.path), '');
    }
    const folders = [...new Set(MODEL_FILES.map((f) => f.folder))];
    const yaml = path.join(root, 'extra_model_paths.yaml');
    writeFileSync(yaml, `image_env:\n    base_path: ${models}\n${folders.map((f) => `    ${f}: ${f}\n`).join('')}`);
    const logger = createLogger({ level: 'debug', write: (line) => void output.push(line) });
    supervisor = new ComfySupervisor({
      config: {
        dir: comfyDir!,
        python: python!,
        url: undefined,
        port: await freePort(),
        extraArgs: ['--cpu'],
        startupTimeoutMs: 600_000,
        extraModelPathsConfig: yaml,
      },
      workDir: path.join(root, 'work'),
      requiredNodeClasses: REQUIRED_CLASSES,
      logger,
    });
    const started = Date.now();
    supervisor.start();
    endpoint = await supervisor.ready();
    bootSeconds = (Date.now() - started) / 1000;
    const run = promisify(execFile);
    const src = [...lavfiInput('testsrc=size=480x832:rate=16')];
    await run(ffmpegPath, [...src, '-frames:v', '1', path.join(endpoint.inputDir!, 'reference.png')]);
    await run(ffmpegPath, [...src, '-frames:v', '17', '-pix_fmt', 'yuv420p', '-c:v', 'libx264', path.join(endpoint.inputDir!, 'pose.mp4')]);
  }, 660_000);

  afterAll(async () => {
    await supervisor?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  }, 60_000);

  it('starts ComfyUI with every pinned custom node and no import failure', () => {
    const comfyLines = output.map((l) => (JSON.parse(l) as { message: string }).message);
    // ComfyUI prints one line per custom node after importing them all; a failed one says IMPORT FAILED.
    expect(comfyLines.some((l) => /Import times for custom nodes/.test(l))).toBe(true);
    const failures = comfyLines.filter((l) => /IMPORT FAILED|Cannot import .* module for custom nodes/.test(l));
    expect(failures).toEqual([]);
    process.stdout.write(`image-env: ComfyUI ready in ${bootSeconds.toFixed(1)} s with ${REQUIRED_CLASSES.length} workflow node classes\n`);
  });

  it.each(VARIANT_NAMES.flatMap((v) => PRECISIONS.map((p) => [v, p] as const)))(
    'ComfyUI accepts the %s graph at %s',
    async (variant, precision) => {
      const prompt = buildPrompt({
        ...paramsFor(variant, {
          seed: 1,
          referenceImageName: 'reference.png',
          poseVideoName: 'pose.mp4',
          filenamePrefix: `image-env/${variant}`,
        }),
        precision,
      });
      const res = await fetch(`${endpoint.baseUrl}/prompt`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt, client_id: 'image-env' }),
      });
      const body = (await res.json()) as { prompt_id?: string; node_errors?: Record<string, unknown>; error?: unknown };
      if (body.prompt_id) {
        // Accepted means queued: take it off again (placeholder weights would only fail to load).
        await fetch(`${endpoint.baseUrl}/queue`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ delete: [body.prompt_id] }),
        });
        await fetch(`${endpoint.baseUrl}/interrupt`, { method: 'POST' });
      }
      expect({ status: res.status, error: body.error ?? null, node_errors: body.node_errors ?? {} }).toEqual({
        status: 200,
        error: null,
        node_errors: {},
      });
    },
    120_000,
  );
});
