import { describe, it, expect } from '@jest/globals';
import {
  buildPrompt,
  unsupportedVariant,
  randomSeed,
  MAX_PROMPT_CHARS,
  MAX_SEED,
  type EngineParams,
  type WorkflowParams,
} from '../../src/workflow/build';
import { NODES, VARIANTS, VARIANT_NAMES } from '../../src/workflow/variants';
import { MODEL_FILES, PRECISIONS, type Precision } from '../../src/workflow/manifest';
import type { ApiNode } from '../../src/workflow/types';
import { isWorkerError } from '../../src/lib/errors';
import { paramsFor } from './fixtures';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

function fieldOf(fn: () => unknown): unknown {
  const err = thrown(fn);
  if (isWorkerError(err, 'INVALID_INPUT')) return err.details.field;
  throw err;
}

describe('buildPrompt', () => {
  it('puts every job value where it belongs', () => {
    const p = buildPrompt(
      paramsFor('turbo', {
        width: 576,
        height: 1024,
        num_frames: 97,
        fps: 12,
        seed: 987654321,
        prompt: 'a woman in red',
        negative_prompt: 'blurry',
        steps: 6,
        shift: 7.5,
        crf: 23,
      }),
    );
    expect(p[NODES.textEncode.id]!.inputs).toMatchObject({ positive_prompt: 'a woman in red', negative_prompt: 'blurry' });
    expect(p[NODES.referenceImage.id]!.inputs.image).toBe('job-1/reference.png');
    expect(p[NODES.poseVideo.id]!.inputs).toMatchObject({ video: 'job-1/pose.mp4', force_rate: 12, frame_load_cap: 97 });
    expect(p[NODES.targetSize.id]!.inputs).toMatchObject({ width: 576, height: 1024 });
    expect(p[NODES.sampler.id]!.inputs).toMatchObject({ steps: 6, cfg: 1, shift: 7.5, seed: 987654321, scheduler: 'dpm++_sde' });
    expect(p[NODES.output.id]!.inputs).toMatchObject({ filename_prefix: 'sd_job-1/steadydancer', frame_rate: 12, crf: 23 });
  });

  it('deep-copies: the template is unchanged and two jobs never share objects', () => {
    const before = JSON.stringify(VARIANTS.turbo.template);
    const a = buildPrompt(paramsFor('turbo', { filenamePrefix: 'sd_a', num_frames: 161 }));
    const b = buildPrompt(paramsFor('turbo', { filenamePrefix: 'sd_b', num_frames: 161 }));
    expect(JSON.stringify(VARIANTS.turbo.template)).toBe(before);
    expect(a[NODES.output.id]!.inputs.filename_prefix).toBe('sd_a');
    expect(b[NODES.output.id]!.inputs.filename_prefix).toBe('sd_b');
    expect(a[NODES.sampler.id]!.inputs).not.toBe(b[NODES.sampler.id]!.inputs);
  });

  it.each(VARIANT_NAMES)('%s: context windows only beyond 81 frames', (variant) => {
    const short = buildPrompt(paramsFor(variant, { num_frames: 81 }));
    expect(short[NODES.contextOptions.id]).toBeUndefined();
    expect(short[NODES.sampler.id]!.inputs.context_options).toBeUndefined();
    const long = buildPrompt(paramsFor(variant, { num_frames: 85 }));
    expect(long[NODES.contextOptions.id]!.inputs).toMatchObject({ context_frames: 81, context_stride: 4, context_overlap: 16 });
    expect(long[NODES.sampler.id]!.inputs.context_options).toEqual([NODES.contextOptions.id, 0]);
  });

  it('picks the diffusion model of the precision (fp8 by default)', () => {
    const model = (p: Partial<WorkflowParams>) => buildPrompt(paramsFor('quality', p))[NODES.modelLoader.id]!.inputs.model;
    expect(model({})).toBe('WanVideo/SteadyDancer/Wan21_SteadyDancer_fp8_e4m3fn_scaled_KJ.safetensors');
    expect(model({ precision: 'fp16' })).toBe('WanVideo/SteadyDancer/Wan21_I2V_SteadyDancer_fp16.safetensors');
    expect(model({ precision: 'gguf-q5_k_m' })).toBe('WanVideo/SteadyDancer/Wan21_I2V_SteadyDancer_fp16-Q5_K_M_fix_5d_tensor.gguf');
  });

  it.each(PRECISIONS)('%s: the loader gets a file of that precision with quantization left to the file', (precision) => {
    const loader = buildPrompt(paramsFor('turbo', { precision }))[NODES.modelLoader.id]!.inputs;
    const file = MODEL_FILES.find((f) => f.path === loader.model)!;
    expect(file.precisions).toEqual([precision]);
    // GGUF needs 'disabled' (the loader raises otherwise); for fp8 'disabled' detects the scaled file.
    expect(loader.quantization).toBe('disabled');
    expect(String(loader.model).endsWith('.gguf')).toBe(precision.startsWith('gguf-'));
  });

  it('accepts the edges of every bound', () => {
    for (const variant of VARIANT_NAMES) {
      const b = VARIANTS[variant].bounds;
      for (const edge of ['min', 'max'] as const) {
        expect(() =>
          buildPrompt(
            paramsFor(variant, {
              width: b.width[edge],
              height: b.height[edge],
              num_frames: b.num_frames[edge],
              fps: b.fps[edge],
              steps: b.steps[edge],
              cfg: b.cfg[edge],
              shift: b.shift[edge],
              crf: b.crf[edge],
              seed: edge === 'min' ? 0 : MAX_SEED,
            }),
          ),
        ).not.toThrow();
      }
    }
  });

  const bad: [string, Partial<WorkflowParams>, WorkflowParams['variant'], string][] = [
    ['width not a multiple of 16', { width: 488 }, 'turbo', 'width'],
    ['width too small', { width: 240 }, 'turbo', 'width'],
    ['height too large', { height: 1296 }, 'quality', 'height'],
    ['frames not 4n+1', { num_frames: 80 }, 'turbo', 'num_frames'],
    ['frames over the variant cap', { num_frames: 165 }, 'quality', 'num_frames'],
    ['frames not whole', { num_frames: 81.5 }, 'turbo', 'num_frames'],
    ['cfg > 1 on a distilled variant', { cfg: 1.5 }, 'turbo', 'cfg'],
    ['cfg > 1 on turbo-rcm', { cfg: 2 }, 'turbo-rcm', 'cfg'],
    ['cfg above quality max', { cfg: 11 }, 'quality', 'cfg'],
    ['too many steps for turbo', { steps: 13 }, 'turbo', 'steps'],
    ['too few steps for quality', { steps: 4 }, 'quality', 'steps'],
    ['shift out of range', { shift: 0 }, 'quality', 'shift'],
    ['fps out of range', { fps: 60 }, 'turbo', 'fps'],
    ['crf out of range', { crf: 52 }, 'turbo', 'crf'],
    ['seed negative', { seed: -1 }, 'turbo', 'seed'],
    ['seed beyond 2^53-1', { seed: 2 ** 53 }, 'turbo', 'seed'],
    ['NaN steps', { steps: Number.NaN }, 'turbo', 'steps'],
    ['prompt too long', { prompt: 'x'.repeat(MAX_PROMPT_CHARS + 1) }, 'turbo', 'prompt'],
    ['reference name escaping input/', { referenceImageName: '../secret.png' }, 'turbo', 'referenceImageName'],
    ['absolute pose path', { poseVideoName: '/etc/passwd' }, 'turbo', 'poseVideoName'],
    ['backslash in pose name', { poseVideoName: 'a\\b.mp4' }, 'turbo', 'poseVideoName'],
    ['prefix escaping output/', { filenamePrefix: 'jobs/../../x' }, 'turbo', 'filenamePrefix'],
    ['empty prefix', { filenamePrefix: '' }, 'turbo', 'filenamePrefix'],
  ];
  it.each(bad)('rejects %s with INVALID_INPUT naming the field', (_label, overrides, variant, field) => {
    expect(fieldOf(() => buildPrompt(paramsFor(variant, overrides)))).toBe(field);
  });

  it('rejects an unknown variant, naming the known ones', () => {
    expect(fieldOf(() => buildPrompt({ ...paramsFor('turbo'), variant: 'fast' as never }))).toBe('variant');
    expect(() => buildPrompt({ ...paramsFor('turbo'), variant: 'fast' as never })).toThrow(
      /use one of turbo, turbo-rcm, turbo-fp8, quality$/,
    );
  });
});

describe('buildPrompt: faults of the image, not the job', () => {
  /** Runs `fn` with the turbo template's node `id` replaced (or removed), then puts it back. */
  function withTurboNode(id: string, replacement: ApiNode | undefined, fn: () => void): void {
    const template = VARIANTS.turbo.template;
    const original = template[id];
    if (replacement) template[id] = replacement;
    else delete template[id];
    try {
      fn();
    } finally {
      template[id] = original as ApiNode;
    }
  }

  it('TEMPLATE_INVALID names the variant, its file, the node and the role when a template lacks a node it fills', () => {
    withTurboNode(NODES.sampler.id, undefined, () => {
      const err = thrown(() => buildPrompt(paramsFor('turbo')));
      expect(isWorkerError(err, 'TEMPLATE_INVALID') && err.details).toEqual({
        variant: 'turbo',
        node: NODES.sampler.id,
        role: 'sampler',
        expected: 'WanVideoSampler',
      });
      expect((err as Error).message).toMatch(
        /^the template of variant "turbo" \(workflows\/turbo\.json\) .*there is no node 50, .*rebuild the image$/,
      );
    });
    withTurboNode(NODES.output.id, { class_type: 'SaveVideo', inputs: {} }, () => {
      const err = thrown(() => buildPrompt(paramsFor('turbo')));
      expect(isWorkerError(err, 'TEMPLATE_INVALID') && err.details).toMatchObject({ node: NODES.output.id, found: 'SaveVideo' });
      expect((err as Error).message).toContain('node 52 is a SaveVideo, where it fills the output (VHS_VideoCombine)');
    });
    expect(() => buildPrompt(paramsFor('turbo'))).not.toThrow(); // put back
  });

  it('MANIFEST_INVALID lists the precisions the manifest has when it has no diffusion model for the one asked', () => {
    const err = thrown(() => buildPrompt(paramsFor('turbo', { precision: 'int4' as Precision })));
    expect(isWorkerError(err, 'MANIFEST_INVALID') && err.details).toEqual({ variant: 'turbo', precision: 'int4' });
    expect((err as Error).message).toBe(
      `workflows/models.json lists no diffusion_model of variant "turbo" for precision "int4" (it has: ${PRECISIONS.join(', ')}). ` +
        'Set MODEL_PRECISION to one of those, or add the file to the manifest and rebuild the image',
    );
    const fp8Only = thrown(() => buildPrompt(paramsFor('turbo-fp8', { precision: 'gguf-q5_k_m' })));
    expect((fp8Only as Error).message).toContain('no diffusion_model of variant "turbo-fp8" for precision "gguf-q5_k_m" (it has: fp8)');
  });

  it('lets the text encoder use its disk cache only when the worker places it (the ComfyUI hook)', () => {
    for (const variant of VARIANT_NAMES) {
      expect(buildPrompt(paramsFor(variant))[NODES.textEncode.id]!.inputs.use_disk_cache).toBe(false);
      expect(buildPrompt({ ...paramsFor(variant), textEmbedCache: true })[NODES.textEncode.id]!.inputs.use_disk_cache).toBe(true);
    }
  });

  it('turbo-fp8 loads the merged model; on a card without fp8 matmul it is refused naming the variant field', () => {
    const engine = { attention: 'sageattn', residentModel: true, blockSwap: 0, vaeTilingAbovePixels: null, compile: false } as const;
    const built = buildPrompt({ ...paramsFor('turbo-fp8'), engine });
    expect(built[NODES.modelLoader.id]?.inputs).toMatchObject({
      model: 'WanVideo/SteadyDancer/Wan21_SteadyDancer_lightx2v_merged_fp8_e4m3fn_scaled.safetensors',
      quantization: 'fp8_e4m3fn_scaled_fast',
    });
    const why = 'NVIDIA A100-SXM4-80GB has compute capability 8.0; fp8 matrix multiplies need 8.9 or newer (Ada, Hopper)';
    const err = thrown(() => buildPrompt({ ...paramsFor('turbo-fp8'), engine: { ...engine, fp8MatmulUnsupported: why } }));
    expect(isWorkerError(err, 'INVALID_INPUT') && err.details).toEqual({ field: 'variant' });
    expect((err as Error).message).toContain(`variant: "turbo-fp8" runs fp8 matrix multiplies, which this worker's GPU cannot: ${why}`);
    // turbo itself is unaffected on that card; the job pipeline asks the same question before downloading
    expect(() => buildPrompt({ ...paramsFor('turbo'), engine: { ...engine, fp8MatmulUnsupported: why } })).not.toThrow();
    expect(unsupportedVariant('turbo-fp8', { fp8MatmulUnsupported: why })).toBe((err as Error).message.replace(/^variant: /, ''));
    expect([
      unsupportedVariant('turbo', { fp8MatmulUnsupported: why }),
      unsupportedVariant('turbo-fp8', {}),
      unsupportedVariant('turbo-fp8', undefined),
    ]).toEqual([undefined, undefined, undefined]);
  });
});

describe('randomSeed', () => {
  it('maps the random source onto 0..MAX_SEED as whole numbers', () => {
    expect(randomSeed(() => 0)).toBe(0);
    expect(randomSeed(() => 0.5)).toBe(Math.floor(0.5 * (MAX_SEED + 1)));
    expect(randomSeed(() => 1 - Number.EPSILON)).toBeLessThanOrEqual(MAX_SEED);
    const seeds = new Set(Array.from({ length: 50 }, () => randomSeed()));
    expect(seeds.size).toBeGreaterThan(45);
    for (const s of seeds) expect(Number.isSafeInteger(s) && s >= 0).toBe(true);
  });

  it('gives a seed buildPrompt accepts', () => {
    const seed = randomSeed(() => 0.999999);
    expect(buildPrompt(paramsFor('turbo', { seed }))[NODES.sampler.id]!.inputs.seed).toBe(seed);
  });
});

describe('buildPrompt engine settings', () => {
  const engine = (over: Partial<EngineParams> = {}): EngineParams => ({
    attention: 'sdpa',
    residentModel: false,
    blockSwap: 0,
    vaeTilingAbovePixels: null,
    compile: false,
    ...over,
  });
  const tiling = (p: ReturnType<typeof buildPrompt>) => [
    p[NODES.poseEncode.id]!.inputs.enable_vae_tiling,
    p[NODES.imageToVideoEncode.id]!.inputs.tiled_vae,
    p[NODES.decode.id]!.inputs.enable_vae_tiling,
  ];

  // Every node that can move its model to the CPU after use: the sampler, both CLIP encodes, the I2V encode.
  const offloads = (p: ReturnType<typeof buildPrompt>) =>
    [NODES.sampler, NODES.poseClipEncode, NODES.referenceClipEncode, NODES.imageToVideoEncode].map(({ id }) => p[id]!.inputs.force_offload);

  it('sets attention, load device and offload from the engine, and leaves the template alone without one', () => {
    const plain = buildPrompt(paramsFor('turbo'));
    expect(plain[NODES.modelLoader.id]!.inputs).toMatchObject({ attention_mode: 'sageattn', load_device: 'offload_device' });
    expect(offloads(plain)).toEqual([true, true, true, true]);
    const resident = buildPrompt({ ...paramsFor('turbo'), engine: engine({ residentModel: true }) });
    expect(resident[NODES.modelLoader.id]!.inputs).toMatchObject({ attention_mode: 'sdpa', load_device: 'main_device' });
    expect(offloads(resident)).toEqual([false, false, false, false]);
    const offload = buildPrompt({ ...paramsFor('quality'), engine: engine({ attention: 'sageattn' }) });
    expect(offload[NODES.modelLoader.id]!.inputs).toMatchObject({ attention_mode: 'sageattn', load_device: 'offload_device' });
    expect(offloads(offload)).toEqual([true, true, true, true]);
  });

  it.each(VARIANT_NAMES)('%s: links the block swap node to the loader only when blocks are swapped', (variant) => {
    for (const p of [buildPrompt(paramsFor(variant)), buildPrompt({ ...paramsFor(variant), engine: engine() })]) {
      expect(p[NODES.blockSwap.id]).toBeUndefined();
      expect(p[NODES.modelLoader.id]!.inputs.block_swap_args).toBeUndefined();
    }
    const swapped = buildPrompt({ ...paramsFor(variant), engine: engine({ blockSwap: 20 }) });
    expect(swapped[NODES.modelLoader.id]!.inputs.block_swap_args).toEqual([NODES.blockSwap.id, 0]);
    expect(swapped[NODES.blockSwap.id]!.inputs).toMatchObject({
      blocks_to_swap: 20,
      prefetch_blocks: 1,
      use_non_blocking: true,
      vace_blocks_to_swap: 0,
    });
    expect(buildPrompt({ ...paramsFor(variant), engine: engine({ blockSwap: 40 }) })[NODES.blockSwap.id]!.inputs.blocks_to_swap).toBe(40);
  });

  it.each(VARIANT_NAMES)('%s: links the torch.compile settings to the loader only when compile is on', (variant) => {
    for (const p of [buildPrompt(paramsFor(variant)), buildPrompt({ ...paramsFor(variant), engine: engine() })]) {
      expect(p[NODES.torchCompile.id]).toBeUndefined();
      expect(p[NODES.modelLoader.id]!.inputs.compile_args).toBeUndefined();
    }
    const compiled = buildPrompt({ ...paramsFor(variant), engine: engine({ compile: true, blockSwap: 10 }) });
    expect(compiled[NODES.modelLoader.id]!.inputs).toMatchObject({
      compile_args: [NODES.torchCompile.id, 0],
      block_swap_args: [NODES.blockSwap.id, 0],
    });
    // Blocks only, static shapes, LoRA applied outside the graph: the wrapper's own safe defaults.
    expect(compiled[NODES.torchCompile.id]!.inputs).toMatchObject({
      backend: 'inductor',
      mode: 'default',
      dynamic: false,
      compile_transformer_blocks_only: true,
      allow_unmerged_lora_compile: false,
    });
  });

  it('refuses a block count the 14B model does not have with CONFIG_INVALID naming the setting (not the job at fault)', () => {
    for (const blockSwap of [-1, 41, 2.5]) {
      const err = thrown(() => buildPrompt({ ...paramsFor('turbo'), engine: engine({ blockSwap }) }));
      expect(isWorkerError(err, 'CONFIG_INVALID') && err.details).toEqual({ blockSwap });
      expect((err as Error).message).toMatch(/^engine\.blockSwap must be a whole number from 0 to 40 .*set BLOCK_SWAP to auto or 0-40$/);
    }
  });

  it('tiles the VAE passes only for frames larger than the threshold', () => {
    const at = (width: number, height: number, vaeTilingAbovePixels: number | null) =>
      tiling(buildPrompt({ ...paramsFor('turbo', { width, height }), engine: engine({ vaeTilingAbovePixels }) }));
    expect(at(480, 832, null)).toEqual([false, false, false]);
    expect(at(480, 832, 480 * 832)).toEqual([false, false, false]);
    expect(at(496, 832, 480 * 832)).toEqual([true, true, true]);
    expect(at(256, 256, 0)).toEqual([true, true, true]);
    expect(tiling(buildPrompt(paramsFor('turbo')))).toEqual([false, false, false]);
  });
});
