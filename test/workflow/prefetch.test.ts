import { afterEach, describe, expect, it } from '@jest/globals';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { modelFilesFor } from '../../src/workflow/manifest';
import { modelFilesInLoadOrder, prefetchBudgetBytes, prefetchFiles } from '../../src/workflow/prefetch';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'sd-prefetch-'));
  dirs.push(d);
  return d;
}

function writeSized(file: string, bytes: number): string {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, Buffer.alloc(bytes, 1));
  return file;
}

describe('modelFilesInLoadOrder', () => {
  it("lists the variant's files found on disk in the order its loaders read them, the diffusion model late", () => {
    const root = tempDir();
    for (const f of modelFilesFor('turbo', 'fp8')) writeSized(path.join(root, f.folder, f.path), 1);
    const rel = modelFilesInLoadOrder('turbo', 'fp8', [root]).map((p) => path.relative(root, p));
    expect(rel).toEqual([
      'vae/Wan2_1_VAE_bf16.safetensors',
      'text_encoders/umt5-xxl-enc-bf16.safetensors',
      'clip_vision/clip_vision_h.safetensors',
      'detection/onnx/yolov10m.onnx',
      'detection/onnx/vitpose_h_wholebody_model.onnx',
      'detection/onnx/vitpose_h_wholebody_data.bin',
      'diffusion_models/WanVideo/SteadyDancer/Wan21_SteadyDancer_fp8_e4m3fn_scaled_KJ.safetensors',
      'loras/WanVideo/Lightx2v/lightx2v_I2V_14B_480p_cfg_step_distill_rank64_bf16.safetensors',
    ]);
    // a missing file is left to the job's own check (and the legacy folder ComfyUI also searches counts)
    rmSync(path.join(root, 'clip_vision'), { recursive: true });
    rmSync(path.join(root, 'text_encoders'), { recursive: true });
    writeSized(path.join(root, 'clip', 'umt5-xxl-enc-bf16.safetensors'), 1);
    const again = modelFilesInLoadOrder('turbo', 'fp8', [root]).map((p) => path.relative(root, p));
    expect(again.slice(0, 3)).toEqual([
      'vae/Wan2_1_VAE_bf16.safetensors',
      'clip/umt5-xxl-enc-bf16.safetensors',
      'detection/onnx/yolov10m.onnx',
    ]);
  });
});

describe('prefetchBudgetBytes', () => {
  it('leaves a fifth of the cacheable memory alone', () => {
    expect(prefetchBudgetBytes(10 * 1024 ** 3)).toBe(8 * 1024 ** 3);
    expect(prefetchBudgetBytes(0)).toBe(0);
  });
});

describe('prefetchFiles', () => {
  it('reads every file through, in small chunks', async () => {
    const root = tempDir();
    const files = [writeSized(path.join(root, 'a'), 3000), writeSized(path.join(root, 'b'), 10)];
    const r = await prefetchFiles({ files, budgetBytes: 1e9, chunkBytes: 1024 });
    expect(r).toMatchObject({ files: 2, bytes: 3010, skipped: [], aborted: false });
  });

  it('skips a file the memory budget cannot hold and still reads smaller later ones', async () => {
    const root = tempDir();
    const files = [
      writeSized(path.join(root, 'first'), 600),
      writeSized(path.join(root, 'big'), 600),
      writeSized(path.join(root, 'small'), 300),
    ];
    const r = await prefetchFiles({ files, budgetBytes: 1000 });
    expect(r).toMatchObject({ files: 2, bytes: 900 });
    expect(r.skipped).toEqual([`${files[1]} (over the memory budget)`]);
  });

  it('names a file it cannot read and goes on; stops when aborted', async () => {
    const root = tempDir();
    const locked = writeSized(path.join(root, 'locked'), 10);
    chmodSync(locked, 0);
    const files = [path.join(root, 'missing'), locked, writeSized(path.join(root, 'ok'), 10)];
    const r = await prefetchFiles({ files, budgetBytes: 1e9 });
    expect(r.skipped[0]).toBe(`${files[0]} (ENOENT)`);
    // root reads a 0-mode file anyway: then it counts as read
    expect(r.files + r.skipped.length).toBe(3);
    const stop = new AbortController();
    stop.abort();
    expect(await prefetchFiles({ files, budgetBytes: 1e9, signal: stop.signal })).toMatchObject({ files: 0, bytes: 0, aborted: true });
  });
});
