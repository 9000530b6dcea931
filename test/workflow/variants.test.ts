import { describe, it, expect } from '@jest/globals';
import pins from '../../workflows/pins.json' with { type: 'json' };
import { NODES, VARIANTS, VARIANT_NAMES, allRequiredNodeClasses } from '../../src/workflow/variants';
import { MODEL_FILES, modelFilesFor } from '../../src/workflow/manifest';
import { isNodeLink, type ApiPrompt } from '../../src/workflow/types';
import { OBJECT_INFO, RECORDED_WITH } from './fixtures';

const inputsOf = (t: ApiPrompt, id: string) => t[id]!.inputs;
const byClass = (t: ApiPrompt, cls: string) => Object.entries(t).filter(([, n]) => n.class_type === cls);

// Inputs whose values are model file names, by class.
const MODEL_INPUTS: Record<string, string[]> = {
  WanVideoModelLoader: ['model'],
  WanVideoLoraSelect: ['lora'],
  WanVideoVAELoader: ['model_name'],
  CLIPVisionLoader: ['clip_name'],
  WanVideoTextEncodeCached: ['model_name'],
  OnnxDetectionModelLoader: ['vitpose_model', 'yolo_model'],
};
function modelValues(t: ApiPrompt): string[] {
  return Object.values(t).flatMap((n) => (MODEL_INPUTS[n.class_type] ?? []).map((i) => String(n.inputs[i])));
}

describe.each(VARIANT_NAMES)('variant %s', (name) => {
  const v = VARIANTS[name];
  const t = v.template;

  it('has every node buildPrompt fills, with the expected class', () => {
    for (const { id, classType } of Object.values(NODES)) expect(t[id]?.class_type).toBe(classType);
  });

  it("template's sampler settings are the variant defaults, and defaults lie within bounds", () => {
    const s = inputsOf(t, NODES.sampler.id);
    expect([s.steps, s.cfg, s.shift, s.scheduler]).toEqual([v.defaults.steps, v.defaults.cfg, v.defaults.shift, v.defaults.scheduler]);
    for (const k of ['width', 'height', 'num_frames', 'fps', 'steps', 'cfg', 'shift', 'crf'] as const) {
      expect(v.defaults[k]).toBeGreaterThanOrEqual(v.bounds[k].min);
      expect(v.defaults[k]).toBeLessThanOrEqual(v.bounds[k].max);
    }
    expect((v.defaults.width % 16) + (v.defaults.height % 16)).toBe(0);
    expect((v.defaults.num_frames - 1) % 4).toBe(0);
    expect(((v.bounds.num_frames.min - 1) % 4) + ((v.bounds.num_frames.max - 1) % 4)).toBe(0);
  });

  it('extracts poses aligned to the reference body and crops (never stretches) to sizes /16', () => {
    const poses = byClass(t, 'PoseDetectionOneToAllAnimation');
    expect(poses).toHaveLength(1);
    expect(poses[0]![1].inputs).toMatchObject({ align_to: 'ref', ref_image: ['33', 0] });
    const video = inputsOf(t, NODES.poseVideo.id);
    expect([video.custom_width, video.custom_height, video.format]).toEqual([0, 0, 'Wan']);
    for (const [, resize] of byClass(t, 'ImageResizeKJv2')) {
      expect([resize.inputs.keep_proportion, resize.inputs.divisible_by]).toEqual(['crop', 16]);
    }
  });

  it('writes H.264 MP4 (yuv420p) at the input fps; torch.compile and block swap are unlinked (buildPrompt links them)', () => {
    const out = inputsOf(t, NODES.output.id);
    expect([out.format, out.pix_fmt, out.frame_rate, out.save_output]).toEqual(['video/h264-mp4', 'yuv420p', v.defaults.fps, true]);
    expect(inputsOf(t, NODES.poseVideo.id).force_rate).toBe(v.defaults.fps);
    expect(t[NODES.torchCompile.id]?.class_type).toBe('WanVideoTorchCompileSettings');
    expect(inputsOf(t, NODES.modelLoader.id).compile_args).toBeUndefined();
    expect(inputsOf(t, NODES.modelLoader.id).block_swap_args).toBeUndefined();
  });

  it('wires the negative pose latents whenever cfg may exceed 1 (the model crashes otherwise)', () => {
    const embeds = inputsOf(t, '48');
    if (v.bounds.cfg.max > 1) expect(embeds.pose_latents_negative).toEqual(['43', 0]);
    else expect(embeds.pose_latents_negative).toBeUndefined();
  });

  it('names exactly the fp8 model files the manifest lists for it', () => {
    const needed = modelFilesFor(name, 'fp8')
      .filter((f) => f.role !== 'pose_estimator_data')
      .map((f) => f.path);
    expect(modelValues(t).sort()).toEqual(needed.sort());
  });
});

describe('variant specifics', () => {
  it('turbo: lightx2v LoRA unmerged via WanVideoSetLoRAs, sageattn, quantization disabled, dpm++_sde', () => {
    const t = VARIANTS.turbo.template;
    expect(inputsOf(t, '11')).toMatchObject({ merge_loras: false, strength: 1 });
    expect(String(inputsOf(t, '11').lora)).toContain('lightx2v_I2V_14B_480p_cfg_step_distill');
    expect(inputsOf(t, '12')).toEqual({ model: ['10', 0], lora: ['11', 0] });
    expect(inputsOf(t, NODES.sampler.id).model).toEqual(['12', 0]);
    expect(inputsOf(t, NODES.modelLoader.id)).toMatchObject({ attention_mode: 'sageattn', quantization: 'disabled' });
    expect(VARIANTS.turbo.experimental).toBe(false);
  });

  it('turbo-rcm: rCM LoRA with the rcm scheduler, marked experimental', () => {
    const t = VARIANTS['turbo-rcm'].template;
    expect(String(inputsOf(t, '11').lora)).toContain('rCM');
    expect(inputsOf(t, NODES.sampler.id).scheduler).toBe('rcm');
    expect(VARIANTS['turbo-rcm'].experimental).toBe(true);
  });

  it('turbo-fp8: the merged model with fp8 matmul, no LoRA node, the sampler on the loader, experimental', () => {
    const t = VARIANTS['turbo-fp8'].template;
    expect(byClass(t, 'WanVideoLoraSelect')).toHaveLength(0);
    expect(byClass(t, 'WanVideoSetLoRAs')).toHaveLength(0);
    expect(inputsOf(t, NODES.sampler.id).model).toEqual(['10', 0]);
    expect(inputsOf(t, NODES.modelLoader.id)).toMatchObject({ quantization: 'fp8_e4m3fn_scaled_fast' });
    const [model] = modelFilesFor('turbo-fp8', 'fp8').filter((f) => f.role === 'diffusion_model');
    expect(model?.derive).toMatchObject({ base: 'steadydancer-fp16', lora: 'lightx2v-i2v-lora', strength: 1 });
    expect(VARIANTS['turbo-fp8']).toMatchObject({ experimental: true, fp8Matmul: true });
    expect(VARIANT_NAMES.filter((n) => VARIANTS[n].fp8Matmul)).toEqual(['turbo-fp8']);
    // Everything but the model is turbo's graph: the same sampling, so the figures compare.
    const turbo = structuredClone(VARIANTS.turbo.template);
    delete turbo['11'];
    delete turbo['12'];
    turbo[NODES.sampler.id]!.inputs.model = ['10', 0];
    const rest = (p: typeof t) => Object.fromEntries(Object.entries(p).filter(([id]) => id !== NODES.modelLoader.id));
    expect(rest(t)).toEqual(rest(turbo));
    expect(VARIANTS['turbo-fp8'].defaults).toEqual(VARIANTS.turbo.defaults);
  });

  it('quality: no LoRA, sampler on the plain model, cfg > 1 by default', () => {
    const t = VARIANTS.quality.template;
    expect(byClass(t, 'WanVideoLoraSelect')).toHaveLength(0);
    expect(inputsOf(t, NODES.sampler.id).model).toEqual(['10', 0]);
    expect(VARIANTS.quality.defaults.cfg).toBeGreaterThan(1);
  });

  it('every link in every template points at an existing node', () => {
    for (const n of VARIANT_NAMES) {
      const t = VARIANTS[n].template;
      for (const node of Object.values(t)) {
        for (const value of Object.values(node.inputs)) if (isNodeLink(value)) expect(t[value[0]]).toBeDefined();
      }
    }
  });

  it('allRequiredNodeClasses is the union of the variants', () => {
    expect(allRequiredNodeClasses()).toEqual([...new Set(VARIANT_NAMES.flatMap((n) => VARIANTS[n].requiredNodeClasses))].sort());
    expect(allRequiredNodeClasses()).toEqual(
      expect.arrayContaining(['WanVideoAddSteadyDancerEmbeds', 'VHS_VideoCombine', 'WanVideoLoraSelect']),
    );
  });
});

describe('manifest, pins and fixture agree', () => {
  it('every manifest path was listed by the real loaders when the fixture was recorded', () => {
    const listed = (cls: string, input: string) => OBJECT_INFO[cls]!.input.required![input]![0] as string[];
    const lists: Record<string, string[]> = {
      diffusion_models: listed('WanVideoModelLoader', 'model'),
      loras: listed('WanVideoLoraSelect', 'lora'),
      vae: listed('WanVideoVAELoader', 'model_name'),
      clip_vision: listed('CLIPVisionLoader', 'clip_name'),
      text_encoders: listed('WanVideoTextEncodeCached', 'model_name'),
      detection: listed('OnnxDetectionModelLoader', 'vitpose_model'),
    };
    for (const f of MODEL_FILES) expect(lists[f.folder]).toContain(f.path);
  });

  it('manifest entries are complete: an HF source or a derivation from other entries, null-or-real size and hash', () => {
    const ids = new Set(MODEL_FILES.map((f) => f.id));
    for (const f of MODEL_FILES) {
      expect(Boolean(f.source) !== Boolean(f.derive)).toBe(true);
      if (f.source) {
        expect(f.source.hf_repo).toMatch(/^[\w.-]+\/[\w.-]+$/);
        expect(f.source.hf_path.length).toBeGreaterThan(0);
      }
      if (f.derive) {
        expect(f.derive.recipe).toBe('merge-lora-fp8-scaled');
        expect(ids.has(f.derive.base) && ids.has(f.derive.lora)).toBe(true);
        expect(MODEL_FILES.find((b) => b.id === f.derive?.base)?.source).toBeDefined();
      }
      if (f.sha256 !== null) expect(f.sha256).toMatch(/^[0-9a-f]{64}$/);
      if (f.bytes !== null) expect(f.bytes).toBeGreaterThan(0);
      for (const v of f.variants) expect(VARIANT_NAMES).toContain(v);
    }
  });

  it('pins are full commits, and the fixture was recorded with the pinned ComfyUI', () => {
    const commits = [pins.comfyui.commit, ...pins.custom_nodes.map((n) => n.commit), pins.python.sageattention.commit];
    for (const c of commits) expect(c).toMatch(/^[0-9a-f]{40}$/);
    expect(commits).not.toContain('0'.repeat(40));
    expect(`v${RECORDED_WITH.comfyui_version}`).toBe(pins.comfyui.ref);
  });
});
