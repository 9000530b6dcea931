import { describe, it, expect, afterEach } from '@jest/globals';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkModels } from '../../src/workflow/models';
import { MODEL_FILES, modelFileLabel } from '../../src/workflow/manifest';

const ROOT = '/models';
const pathOf = (folder: string, p: string, root = ROOT) => path.join(root, folder, ...p.split('/'));
const allFp8 = MODEL_FILES.filter((f) => f.precisions.includes('fp8'));

function fakeDisk(files: string[]): (p: string) => boolean {
  const set = new Set(files);
  return (p) => set.has(p);
}

describe('checkModels', () => {
  it('all files present: every variant available', () => {
    const r = checkModels({ modelsDirs: [ROOT], exists: fakeDisk(allFp8.map((f) => pathOf(f.folder, f.path))) });
    expect(r.available).toEqual(['turbo', 'turbo-rcm', 'turbo-fp8', 'quality']);
    expect(r.missing).toEqual({ turbo: [], 'turbo-rcm': [], 'turbo-fp8': [], quality: [] });
  });

  it('a missing LoRA disables only the variant that needs it, naming the file', () => {
    const rcm = MODEL_FILES.find((f) => f.id === 'rcm-t2v-lora')!;
    const present = allFp8.filter((f) => f !== rcm).map((f) => pathOf(f.folder, f.path));
    const r = checkModels({ modelsDirs: [ROOT], exists: fakeDisk(present) });
    expect(r.available).toEqual(['turbo', 'turbo-fp8', 'quality']);
    expect(r.missing['turbo-rcm']).toEqual([modelFileLabel(rcm)]);
  });

  it('without the merged model only turbo-fp8 is off; it needs no LoRA file', () => {
    const merged = MODEL_FILES.find((f) => f.id === 'steadydancer-lightx2v-merged-fp8')!;
    const lora = MODEL_FILES.find((f) => f.id === 'lightx2v-i2v-lora')!;
    const r = checkModels({
      modelsDirs: [ROOT],
      exists: fakeDisk(allFp8.filter((f) => f !== merged).map((f) => pathOf(f.folder, f.path))),
    });
    expect(r.available).toEqual(['turbo', 'turbo-rcm', 'quality']);
    expect(r.missing['turbo-fp8']).toEqual([modelFileLabel(merged)]);
    const noLora = checkModels({
      modelsDirs: [ROOT],
      exists: fakeDisk(allFp8.filter((f) => f !== lora).map((f) => pathOf(f.folder, f.path))),
    });
    expect(noLora.available).toEqual(['turbo-rcm', 'turbo-fp8', 'quality']);
  });

  it('an image of another precision has no turbo-fp8 model at all, and says so', () => {
    const gguf = MODEL_FILES.filter((f) => f.precisions.includes('gguf-q5_k_m')).map((f) => pathOf(f.folder, f.path));
    const r = checkModels({ modelsDirs: [ROOT], precision: 'gguf-q5_k_m', exists: fakeDisk(gguf) });
    expect(r.available).toEqual(['turbo', 'turbo-rcm', 'quality']);
    expect(r.missing['turbo-fp8']).toEqual(['a gguf-q5_k_m diffusion model for turbo-fp8 (workflows/models.json lists none)']);
  });

  it('looks in every models dir and in legacy unet/ and clip/ folders', () => {
    const present = allFp8.map((f) => {
      if (f.folder === 'diffusion_models') return pathOf('unet', f.path, '/vol');
      if (f.folder === 'text_encoders') return pathOf('clip', f.path);
      return pathOf(f.folder, f.path, f.folder === 'loras' ? '/vol' : ROOT);
    });
    const r = checkModels({ modelsDirs: [ROOT, '/vol'], exists: fakeDisk(present) });
    expect(r.available).toHaveLength(4);
  });

  it('fp16 needs the fp16 diffusion model, not the fp8 one', () => {
    const fp8Only = allFp8.map((f) => pathOf(f.folder, f.path));
    const r = checkModels({ modelsDirs: [ROOT], precision: 'fp16', exists: fakeDisk(fp8Only) });
    expect(r.available).toEqual([]);
    expect(r.missing.turbo).toEqual(['diffusion_models/WanVideo/SteadyDancer/Wan21_I2V_SteadyDancer_fp16.safetensors']);
  });

  describe('on a real directory', () => {
    let dir: string | undefined;
    afterEach(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    });
    it('finds files with the default fs check', () => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'sd-models-'));
      for (const f of allFp8.filter((x) => x.id !== 'lightx2v-i2v-lora')) {
        const p = pathOf(f.folder, f.path, dir);
        mkdirSync(path.dirname(p), { recursive: true });
        writeFileSync(p, '');
      }
      expect(checkModels({ modelsDirs: [dir] }).available).toEqual(['turbo-rcm', 'turbo-fp8', 'quality']);
    });
  });
});
