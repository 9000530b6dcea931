import { describe, it, expect } from '@jest/globals';
import { checkPromptSchema } from './prompt-schema';
import { buildPrompt } from '../../src/workflow/build';
import { VARIANTS, VARIANT_NAMES } from '../../src/workflow/variants';
import type { ApiPrompt } from '../../src/workflow/types';
import { modelFilesFor, type Precision } from '../../src/workflow/manifest';
import { OBJECT_INFO, paramsFor } from './fixtures';

/** turbo-fp8 exists for fp8 images only (its merged model); the other variants for every precision. */
const hasModel = (variant: (typeof VARIANT_NAMES)[number], precision: Precision) =>
  modelFilesFor(variant, precision).some((f) => f.role === 'diffusion_model');

describe('templates against the recorded object_info', () => {
  it.each(VARIANT_NAMES)('%s template matches the real node schemas', (variant) => {
    expect(checkPromptSchema(VARIANTS[variant].template, OBJECT_INFO)).toEqual([]);
  });

  it.each(
    VARIANT_NAMES.flatMap(
      (v) =>
        [
          [v, 81, 'fp8'],
          [v, 161, 'fp16'],
          [v, 81, 'gguf-q4_k_m'],
          [v, 161, 'gguf-q6_k'],
        ] as const,
    ).filter(([v, , precision]) => hasModel(v, precision)),
  )('%s built with %i frames (%s) matches the real node schemas', (variant, frames, precision) => {
    const prompt = buildPrompt(paramsFor(variant, { num_frames: frames, precision }));
    expect(checkPromptSchema(prompt, OBJECT_INFO)).toEqual([]);
  });

  it.each(VARIANT_NAMES)('%s built for a small card (block swap, tiled VAE, GGUF) matches the real node schemas', (variant) => {
    const engine = { attention: 'sdpa', residentModel: false, blockSwap: 40, vaeTilingAbovePixels: 0, compile: false } as const;
    const precision = hasModel(variant, 'gguf-q5_k_m') ? 'gguf-q5_k_m' : 'fp8';
    const prompt = buildPrompt({ ...paramsFor(variant, { precision }), engine });
    expect(prompt['13']?.class_type).toBe('WanVideoBlockSwap');
    expect(checkPromptSchema(prompt, OBJECT_INFO)).toEqual([]);
  });

  it('knows every class the templates use', () => {
    for (const v of VARIANT_NAMES) {
      for (const c of VARIANTS[v].requiredNodeClasses) expect(OBJECT_INFO[c]).toBeDefined();
    }
  });
});

describe('a broken template is caught', () => {
  const base = (): ApiPrompt => structuredClone(VARIANTS.turbo.template);
  const cases: [string, (p: ApiPrompt) => void, { node: string; input?: string; match: RegExp }][] = [
    [
      'unknown class',
      (p) => {
        p['50']!.class_type = 'WanVideoSamplerTypo';
      },
      { node: '50', match: /not installed/ },
    ],
    [
      'missing required input',
      (p) => {
        delete p['50']!.inputs.shift;
      },
      { node: '50', input: 'shift', match: /required input shift/ },
    ],
    [
      'combo value not in list',
      (p) => {
        p['50']!.inputs.scheduler = 'dpmpp_sde';
      },
      { node: '50', input: 'scheduler', match: /not in the list/ },
    ],
    [
      'model file not in list',
      (p) => {
        p['10']!.inputs.model = 'WanVideo\\SteadyDancer\\x.safetensors';
      },
      { node: '10', input: 'model', match: /not in the list/ },
    ],
    [
      'INT below min',
      (p) => {
        p['50']!.inputs.steps = 0;
      },
      { node: '50', input: 'steps', match: /smaller than min/ },
    ],
    [
      'FLOAT above max',
      (p) => {
        p['50']!.inputs.cfg = 31;
      },
      { node: '50', input: 'cfg', match: /bigger than max/ },
    ],
    [
      'float where INT expected',
      (p) => {
        p['43']!.inputs.tile_x = 272.5;
      },
      { node: '43', input: 'tile_x', match: /integer/ },
    ],
    [
      'string where BOOLEAN expected',
      (p) => {
        p['50']!.inputs.force_offload = 'true';
      },
      { node: '50', input: 'force_offload', match: /boolean/ },
    ],
    [
      'literal where a link is needed',
      (p) => {
        p['50']!.inputs.model = 'x';
      },
      { node: '50', input: 'model', match: /link/ },
    ],
    [
      'link to a missing node',
      (p) => {
        p['50']!.inputs.image_embeds = ['99', 0];
      },
      { node: '50', input: 'image_embeds', match: /does not exist/ },
    ],
    [
      'link to a missing output',
      (p) => {
        p['32']!.inputs.image = ['34', 7];
      },
      { node: '32', input: 'image', match: /has 4 outputs/ },
    ],
    [
      'link of the wrong type',
      (p) => {
        p['50']!.inputs.model = ['20', 0];
      },
      { node: '50', input: 'model', match: /expects WANVIDEOMODEL but .* WANVAE/ },
    ],
    [
      'INT output into an IMAGE input',
      (p) => {
        p['41']!.inputs.images = ['32', 3];
      },
      { node: '41', input: 'images', match: /expects IMAGE/ },
    ],
    [
      'unknown input name',
      (p) => {
        p['48']!.inputs.pose_latent_negative = ['43', 0];
      },
      { node: '48', input: 'pose_latent_negative', match: /no input/ },
    ],
    [
      'VHS format widget missing',
      (p) => {
        delete p['52']!.inputs.crf;
      },
      { node: '52', input: 'crf', match: /required input crf/ },
    ],
    [
      'VHS format widget value not in list',
      (p) => {
        p['52']!.inputs.pix_fmt = 'rgb24';
      },
      { node: '52', input: 'pix_fmt', match: /not in the list/ },
    ],
    [
      'empty file name',
      (p) => {
        p['30']!.inputs.image = '';
      },
      { node: '30', input: 'image', match: /file name/ },
    ],
  ];

  it.each(cases)('%s', (_label, mutate, expected) => {
    const prompt = base();
    mutate(prompt);
    const problems = checkPromptSchema(prompt, OBJECT_INFO);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ node: expected.node, ...(expected.input ? { input: expected.input } : {}) });
    expect(problems[0]!.message).toMatch(expected.match);
  });

  it('accepts any file name for inputs the node checks itself, but only those', () => {
    const prompt = base();
    prompt['30']!.inputs.image = 'not-in-the-recorded-list.png';
    expect(checkPromptSchema(prompt, OBJECT_INFO)).toEqual([]);
    expect(checkPromptSchema(prompt, OBJECT_INFO, { fileInputs: { VHS_LoadVideo: ['video'] } })).toEqual([
      expect.objectContaining({ node: '30', input: 'image' }),
    ]);
  });
});
