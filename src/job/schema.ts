// The job input: one zod schema, the single source of truth. Types come from z.infer; bounds and
// defaults come from the variant registry, so adding a variant changes nothing here.
import { z } from 'zod';
import { WorkerError } from '../lib/errors';
import { MAX_PROMPT_CHARS, MAX_SEED } from '../workflow/build';

export interface NumberBounds {
  readonly min: number;
  readonly max: number;
  readonly multipleOf?: number;
}

/** What the schema needs to know of a variant (src/workflow's registry satisfies it). */
export interface VariantLimits {
  readonly defaults: {
    readonly width: number;
    readonly height: number;
    readonly num_frames: number;
    readonly fps: number;
    readonly steps: number;
    readonly cfg: number;
    readonly shift: number;
    readonly crf: number;
    readonly prompt: string;
    readonly negative_prompt: string;
  };
  readonly bounds: {
    readonly width: NumberBounds;
    readonly height: NumberBounds;
    readonly num_frames: NumberBounds;
    readonly fps: NumberBounds;
    readonly steps: NumberBounds;
    readonly cfg: NumberBounds;
    readonly shift: NumberBounds;
    readonly crf: NumberBounds;
  };
}


const mediaSource = z
  .string({ error: 'must be a string: an https:// URL, a data: URI, base64, or s3://bucket/key' })
  .trim()
  .min(1, 'must not be empty');

export function createJobInputSchema<V extends string>(variants: Readonly<Record<V, VariantLimits>>, defaultVariant: NoInfer<V>) {
  const names = Object.keys(variants) as [V, ...V[]];
  return z
    .strictObject({
      reference_image: mediaSource,
      pose_video: mediaSource,
      variant: z.enum(names, { error: `must be one of: ${names.join(', ')}` }).default(defaultVariant),
      width: z.number().int().optional(),
      height: z.number().int().optional(),
      num_frames: z.number().int().optional(),
      fps: z.number().int().optional(),
      seed: z.number().int().min(0).max(MAX_SEED).optional(),
      prompt: z.string().max(MAX_PROMPT_CHARS).optional(),
      negative_prompt: z.string().max(MAX_PROMPT_CHARS).optional(),
      steps: z.number().int().optional(),
      cfg: z.number().optional(),
      shift: z.number().optional(),
      output: z
        .strictObject({
          crf: z.number().int().optional(),
          key_prefix: z
            .string()
            .max(200)
            .regex(/^[A-Za-z0-9!_.*'()/-]*$/, 'may contain only letters, digits and !_.*\'()/- (no spaces or control characters)')
            .refine((s) => !s.startsWith('/'), 'must not start with "/": keys are relative to the bucket (e.g. "dances/")')
            .refine((s) => !s.replace(/^\/+/, '').split('/').slice(0, -1).some((seg) => seg === '' || seg === '.' || seg === '..'), 'must not contain empty, "." or ".." segments')
            .optional(),
        })
        .optional(),
    })
    .superRefine((input, ctx) => {
      const limits = variants[input.variant];
      const check = (field: keyof VariantLimits['bounds'], value: number | undefined, path: string[] = [field]): void => {
        if (value === undefined) return;
        const b = limits.bounds[field];
        if (value < b.min || value > b.max) {
          ctx.addIssue({ code: 'custom', path, message: `must be from ${b.min} to ${b.max} for variant "${input.variant}"` });
        } else if (b.multipleOf && value % b.multipleOf !== 0) {
          ctx.addIssue({ code: 'custom', path, message: `must be a multiple of ${b.multipleOf}` });
        }
      };
      check('width', input.width);
      check('height', input.height);
      check('num_frames', input.num_frames);
      check('steps', input.steps);
      check('cfg', input.cfg);
      check('shift', input.shift);
      check('fps', input.fps);
      check('crf', input.output?.crf, ['output', 'crf']);
      if (input.num_frames !== undefined && (input.num_frames - 1) % 4 !== 0) {
        ctx.addIssue({ code: 'custom', path: ['num_frames'], message: 'must be 4n+1 (e.g. 49, 81, 161)' });
      }
    });
}

export type JobInputSchema<V extends string> = ReturnType<typeof createJobInputSchema<V>>;
export type JobInput<V extends string = string> = z.infer<JobInputSchema<V>>;

/** A validated input with every default filled in: what the pipeline works from. */
export interface ResolvedJobInput<V extends string = string> {
  readonly reference_image: string;
  readonly pose_video: string;
  readonly variant: V;
  readonly width: number;
  readonly height: number;
  readonly num_frames: number;
  readonly fps: number;
  readonly seed: number;
  readonly prompt: string;
  readonly negative_prompt: string;
  readonly steps: number;
  readonly cfg: number;
  readonly shift: number;
  readonly crf: number;
  readonly key_prefix: string | undefined;
}

/** Lists every problem at once, each with its field path ("output.crf: ..."). */
function describeIssues(error: z.ZodError, raw: object): { message: string; fields: string[] } {
  const parts: string[] = [];
  const fields: string[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const field = [...issue.path, key].join('.');
        fields.push(field);
        parts.push(`${field}: unknown field (check its spelling)`);
      }
      continue;
    }
    const field = issue.path.join('.') || 'input';
    fields.push(field);
    const missing = issue.code === 'invalid_type' && valueAt(raw, issue.path) === undefined;
    const message = missing ? 'is required' : issue.message;
    parts.push(`${field}: ${message}`);
  }
  return { message: parts.join('; '), fields };
}

function valueAt(raw: object, path: readonly PropertyKey[]): unknown {
  let value: unknown = raw;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

export function parseJobInput<V extends string>(
  schema: JobInputSchema<V>,
  variants: Readonly<Record<V, VariantLimits>>,
  raw: unknown,
  randomSeed: () => number,
): ResolvedJobInput<V> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new WorkerError('INVALID_INPUT', 'input must be a JSON object with reference_image and pose_video', {
      details: { field: 'input' },
    });
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const { message, fields } = describeIssues(parsed.error, raw);
    throw new WorkerError('INVALID_INPUT', message, { details: { fields } });
  }
  const input = parsed.data;
  const d = variants[input.variant].defaults;
  return {
    reference_image: input.reference_image,
    pose_video: input.pose_video,
    variant: input.variant,
    width: input.width ?? d.width,
    height: input.height ?? d.height,
    num_frames: input.num_frames ?? d.num_frames,
    fps: input.fps ?? d.fps,
    seed: input.seed ?? randomSeed(),
    prompt: input.prompt ?? d.prompt,
    negative_prompt: input.negative_prompt ?? d.negative_prompt,
    steps: input.steps ?? d.steps,
    cfg: input.cfg ?? d.cfg,
    shift: input.shift ?? d.shift,
    crf: input.output?.crf ?? d.crf,
    key_prefix: input.output?.key_prefix,
  };
}
