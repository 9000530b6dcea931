import { describe, expect, it } from '@jest/globals';
import { createJobInputSchema, parseJobInput } from '../../src/job/schema';
import { isWorkerError, type WorkerError } from '../../src/lib/errors';
import { FIELD_LIMITS, TEST_VARIANTS } from './limits';

const schema = createJobInputSchema(TEST_VARIANTS, 'turbo', FIELD_LIMITS);
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

  it('uses the chosen variant for defaults and bounds, and names the variant where its bound differs', () => {
    const q = parse({ ...base, variant: 'quality', seed: 5, output: { crf: 23, key_prefix: 'dances/' } });
    expect(q).toMatchObject({ variant: 'quality', steps: 40, cfg: 5, seed: 5, crf: 23, key_prefix: 'dances/' });
    expect(rejection({ ...base, cfg: 5 }).message).toBe(
      'cfg: must be 1 for variant "turbo", got 5 (send 1, or leave it out for the default 1)',
    );
    expect(rejection({ ...base, variant: 'quality', steps: 2 }).message).toBe(
      'steps: must be a whole number from 10 to 80 for variant "quality", got 2 (send 10, or leave it out for the default 40)',
    );
  });

  it('reports every problem at once: a wrong type does not hide a range error elsewhere', () => {
    const err = rejection({ ...base, steps: '4', output: { crf: 60 } });
    expect(err.message).toBe(
      'steps: must be a whole number from 1 to 12 for variant "turbo", got the string "4" (send 4 as a number, not a string, or leave it out for the default 4); ' +
        'output.crf: must be a whole number from 0 to 51, got 60 (send 51, or leave it out for the default 19)',
    );
    expect(err.details.fields).toEqual(['steps', 'output.crf']);
    const many = rejection({
      reference_image: 5,
      steps: null,
      width: 481,
      num_frames: 80,
      seed: -1,
      prompt: 7,
      widht: 480,
      output: { crf: '19', key_prefix: '/etc/' },
    });
    expect(many.details.fields).toEqual(
      expect.arrayContaining([
        'reference_image',
        'pose_video',
        'steps',
        'width',
        'num_frames',
        'seed',
        'prompt',
        'widht',
        'output.crf',
        'output.key_prefix',
      ]),
    );
    expect(many.details.fields).toHaveLength(10);
  });

  it('states a bound every variant shares without naming a variant', () => {
    for (const variant of ['turbo', 'quality']) {
      expect(rejection({ ...base, variant, output: { crf: 60 } }).message).toBe(
        'output.crf: must be a whole number from 0 to 51, got 60 (send 51, or leave it out for the default 19)',
      );
      expect(rejection({ ...base, variant, width: 481 }).message).not.toContain('variant');
    }
  });

  it('checks the other fields against the widest bounds when the variant itself is wrong', () => {
    const err = rejection({ ...base, variant: 'fastest', steps: 100, fps: 60 });
    expect(err.message).toContain(
      'variant: must be one of "turbo", "quality", got the string "fastest" (send one of these, or leave it out for "turbo")',
    );
    expect(err.message).toContain(
      "steps: must be a whole number from 1 to 80, depending on the variant, got 100 (send 80, or leave it out for the variant's default)",
    );
    expect(err.message).toContain('fps: must be a whole number from 8 to 30, got 60 (send 30, or leave it out for the default 16)');
  });

  it('rejects unknown fields by name, with the field meant or where it belongs', () => {
    const err = rejection({ ...base, widht: 480, crf: 19, colour: 'red', output: { crf: 19, bucket: 'x', seed: 1 } });
    expect(err.message).toContain('widht: unknown field (did you mean "width"?)');
    expect(err.message).toContain('crf: unknown field here (it belongs under "output")');
    expect(err.message).toMatch(/colour: unknown field \(accepted here: reference_image, pose_video, variant, .*output\)/);
    expect(err.message).toContain('output.bucket: unknown field (accepted here: crf, key_prefix)');
    expect(err.message).toContain('output.seed: unknown field here (it belongs at the top level of input)');
    expect(err.details.fields).toEqual(expect.arrayContaining(['widht', 'crf', 'colour', 'output.bucket', 'output.seed']));
  });

  it('names missing required fields and what to send', () => {
    const err = rejection({ pose_video: 'x' });
    expect(err.message).toBe('reference_image: is required: send an https:// URL, a data: URI, bare base64 or s3://bucket/key');
  });

  it.each(
    (
      [
        [{ width: 481 }, 'width: must be a whole number from 256 to 1280 and a multiple of 16, got 481 (send 480,'],
        [{ width: 1.5 }, 'width: must be a whole number from 256 to 1280 and a multiple of 16, got 1.5 (send 256,'],
        [{ height: 2048 }, 'height: must be a whole number from 256 to 1280 and a multiple of 16, got 2048 (send 1280,'],
        [{ num_frames: 80 }, 'num_frames: must be a whole number from 5 to 321 of the form 4n+1 (49, 81, 161…), got 80 (send 81,'],
        [{ steps: 0 }, 'steps: must be a whole number from 1 to 12 for variant "turbo", got 0 (send 1,'],
        [{ seed: -1 }, 'seed: must be a whole number from 0 to 9007199254740991, got -1 (send 0, or leave it out for a random seed)'],
        [{ seed: 1.5 }, 'seed: must be a whole number from 0 to 9007199254740991, got 1.5 (send 2, or leave it out for a random seed)'],
        [
          { shift: 'high' },
          'shift: must be a number from 0 to 20, got the string "high" (send a number such as 5, or leave it out for the default 5)',
        ],
        [
          { fps: null },
          'fps: must be a whole number from 8 to 30, got null (send a number such as 16, or leave it out for the default 16)',
        ],
        [{ cfg: true }, 'cfg: must be 1 for variant "turbo", got true'],
        [{ variant: 'fastest' }, 'variant: must be one of "turbo", "quality", got the string "fastest"'],
        [{ output: { crf: 60 } }, 'output.crf: must be a whole number from 0 to 51, got 60 (send 51, or leave it out for the default 19)'],
        [
          { output: 'fast' },
          'output: must be an object such as {"crf": 19, "key_prefix": "dances/"}, got the string "fast" (or leave it out)',
        ],
        [
          { output: { key_prefix: '../etc/' } },
          'output.key_prefix: must not contain "." or ".." segments (send "etc/", or leave it out for BUCKET_KEY_PREFIX)',
        ],
        [
          { output: { key_prefix: '/etc/' } },
          'output.key_prefix: must not start with "/" (send "etc/", or leave it out for BUCKET_KEY_PREFIX)',
        ],
        [{ output: { key_prefix: 'a//b/' } }, 'output.key_prefix: must not contain empty segments ("//") (send "a/b/",'],
        [
          { output: { key_prefix: 'my dances/' } },
          'output.key_prefix: may contain only letters, digits and !_.*\'()/-, got " " (send "my-dances/",',
        ],
        [{ output: { key_prefix: 'x'.repeat(201) } }, 'output.key_prefix: must be at most 200 characters, got 201 (send a shorter one,'],
        [{ output: { key_prefix: 5 } }, 'output.key_prefix: must be a string such as "dances/", got 5'],
        [{ prompt: 'x'.repeat(4001) }, 'prompt: must be at most 4000 characters, got 4001 (shorten it)'],
        [
          { negative_prompt: ['blurry'] },
          'negative_prompt: must be text of at most 4000 characters, got an array (send a string such as "a person dancing", or leave it out for the variant\'s negative_prompt)',
        ],
        [{ reference_image: '' }, 'reference_image: must not be empty: send an https:// URL'],
        [{ pose_video: 42 }, 'pose_video: must be a string, got 42 (send an https:// URL, a data: URI, bare base64 or s3://bucket/key)'],
      ] as [Record<string, unknown>, string][]
    ).map(([patch, expected]) => [JSON.stringify(patch).slice(0, 60), patch, expected] as const),
  )('rejects %s naming the field, the bound and what to send', (_name, patch, expected) => {
    expect(rejection({ ...base, ...patch }).message).toContain(expected);
  });

  it('never answers with a validation library default: every message names the field, what was sent and what to send', () => {
    const wrong: unknown[] = ['4', 'x', '', null, true, {}, [], -1, 0.5, 1e9, -1e9];
    const fields = [
      'reference_image',
      'pose_video',
      'variant',
      'width',
      'height',
      'num_frames',
      'fps',
      'seed',
      'prompt',
      'negative_prompt',
      'steps',
      'cfg',
      'shift',
      'output',
      'output.crf',
      'output.key_prefix',
    ];
    let checked = 0;
    for (const field of fields) {
      for (const value of wrong) {
        const [outer, inner] = field.split('.') as [string, string | undefined];
        const raw = inner ? { ...base, [outer]: { [inner]: value } } : { ...base, [outer]: value };
        let message: string;
        try {
          parse(raw);
          continue; // some of these are valid for some fields
        } catch (err) {
          message = (err as Error).message;
        }
        checked++;
        expect(message.startsWith(`${field}: `)).toBe(true);
        expect(message).not.toMatch(/Invalid input|Too (small|big)|expected \w+, received|[<>]=|Invalid (string|option)/);
        expect(message).toMatch(/got |is required|must not be empty/);
        expect(message).toMatch(/send |shorten|leave it out/);
      }
    }
    expect(checked).toBeGreaterThan(150);
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
    ['dances\n/', 'may contain only letters, digits and'],
    ['d\u0000/', 'may contain only letters, digits and'],
    ['dances /', 'may contain only letters, digits and'],
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
