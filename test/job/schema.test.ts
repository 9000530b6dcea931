import { describe, expect, it } from '@jest/globals';
import { createJobInputSchema, parseJobInput } from '../../src/job/schema';
import { isWorkerError, type WorkerError } from '../../src/lib/errors';
import { TEST_VARIANTS } from './limits';

const schema = createJobInputSchema(TEST_VARIANTS, 'turbo');
const parse = (raw: unknown) => parseJobInput(schema, TEST_VARIANTS, raw, () => 777);
const base = { reference_image: 'https://example.com/p.png', pose_video: 'https://example.com/d.mp4' };

function rejection(raw: unknown): WorkerError {
  try {
    parse(raw);
  } catch (err) {
    if (isWorkerError(err, 'INVALID_INPUT')) return err;
    throw err;
  }
  throw new Error('expected INVALID_INPUT');
}

describe('job input schema', () => {
  it('fills every default from the variant and draws a seed when absent', () => {
    expect(parse(base)).toEqual({
      ...base,
      variant: 'turbo',
      width: 480,
      height: 832,
      num_frames: 81,
      fps: 16,
      seed: 777,
      prompt: 'a person dancing',
      negative_prompt: '',
      steps: 4,
      cfg: 1,
      shift: 5,
      crf: 19,
      key_prefix: undefined,
    });
  });

  it('uses the chosen variant for defaults and bounds', () => {
    const q = parse({ ...base, variant: 'quality', seed: 5, output: { crf: 23, key_prefix: 'dances/' } });
    expect(q).toMatchObject({ variant: 'quality', steps: 40, cfg: 5, seed: 5, crf: 23, key_prefix: 'dances/' });
    expect(rejection({ ...base, cfg: 5 }).message).toContain('cfg: must be from 1 to 1 for variant "turbo"');
  });

  it('rejects unknown fields by name, nested ones too', () => {
    const err = rejection({ ...base, widht: 480, output: { crf: 19, bucket: 'x' } });
    expect(err.message).toContain('widht: unknown field');
    expect(err.message).toContain('output.bucket: unknown field');
    expect(err.details.fields).toEqual(expect.arrayContaining(['widht', 'output.bucket']));
  });

  it('names missing required fields', () => {
    const err = rejection({ pose_video: 'x' });
    expect(err.message).toContain('reference_image: is required');
  });

  it.each([
    [{ width: 481 }, 'width: must be a multiple of 16'],
    [{ height: 2048 }, 'height: must be from 256 to 1280'],
    [{ num_frames: 80 }, 'num_frames: must be 4n+1'],
    [{ steps: 0 }, 'steps: must be from 1 to 12'],
    [{ seed: -1 }, 'seed'],
    [{ seed: 1.5 }, 'seed'],
    [{ variant: 'fastest' }, 'variant: must be one of: turbo, quality'],
    [{ output: { crf: 60 } }, 'output.crf: must be from 0 to 51'],
    [{ fps: 60 }, 'fps: must be from 8 to 30'],
    [{ output: { key_prefix: '../etc/' } }, 'output.key_prefix'],
    [{ reference_image: '' }, 'reference_image: must not be empty'],
    [{ pose_video: 42 }, 'pose_video: must be a string'],
  ])('rejects %j naming the field', (patch, expected) => {
    expect(rejection({ ...base, ...patch }).message).toContain(expected);
  });

  it('rejects a non-object input', () => {
    expect(rejection('hello').details).toEqual({ field: 'input' });
    expect(rejection(null).message).toContain('input must be a JSON object');
  });
});

describe('output.key_prefix', () => {
  it.each([
    ['/etc/', 'must not start with "/"'],
    ['//x/', 'must not start with "/"'],
    ['a/../b/', '".." segments'],
    ['./x/', '"." or ".." segments'],
    ['a//b/', 'empty'],
    ['dances\n/', 'no spaces or control characters'],
    ['d\u0000/', 'no spaces or control characters'],
    ['dances /', 'no spaces or control characters'],
  ])('refuses %j as INVALID_INPUT naming output.key_prefix', (prefix, reason) => {
    const err = rejection({ ...base, output: { key_prefix: prefix } });
    expect(err.details).toEqual({ fields: ['output.key_prefix'] });
    expect(err.message).toMatch(/^output\.key_prefix: /);
    expect(err.message).toContain(reason);
  });

  it.each(['dances/', 'a/b/c/', 'run-1_', 'x.y/', ''])('accepts %j', (prefix) => {
    expect(parse({ ...base, output: { key_prefix: prefix } }).key_prefix).toBe(prefix);
  });
});
