// The job input: one zod schema, the single source of truth. Types come from z.infer; bounds and
// defaults come from the variant registry, so adding a variant changes nothing here. The schema is
// built once per variant (its bounds in every message) and picked by the input's `variant`.
import { z } from 'zod';
import { describeValue, fits, keyPrefixMessage, numberMessage, unknownFieldMessage, type NumberRule } from './input-rules';
import { jobError } from './errors';

export interface NumberBounds {
  readonly min: number;
  readonly max: number;
  readonly multipleOf?: number;
}

/** Limits of the fields every variant shares (the workflow's, handed over through WorkflowPort). */
export interface FieldLimits {
  readonly maxPromptChars: number;
  readonly maxSeed: number;
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

/** The fields whose bounds come from the variant registry (`crf` sits under `output`). */
type RangedField = keyof VariantLimits['bounds'];
const INTEGER_FIELDS: Readonly<Record<RangedField, boolean>> = {
  width: true,
  height: true,
  num_frames: true,
  fps: true,
  steps: true,
  cfg: false,
  shift: false,
  crf: true,
};

const SOURCE_FORMS = 'an https:// URL, a data: URI, bare base64 or s3://bucket/key';

const mediaSource = z
  .string({
    error: (iss) =>
      iss.input === undefined
        ? `is required: send ${SOURCE_FORMS}`
        : `must be a string, got ${describeValue(iss.input)} (send ${SOURCE_FORMS})`,
  })
  .trim()
  .min(1, { error: `must not be empty: send ${SOURCE_FORMS}` });

const text = (field: 'prompt' | 'negative_prompt', maxChars: number) =>
  z
    .string({
      error: (iss) =>
        `must be text of at most ${maxChars} characters, got ${describeValue(iss.input)} (send a string such as "a person dancing", or leave it out for the variant's ${field})`,
    })
    .max(maxChars, {
      error: (iss) => `must be at most ${maxChars} characters, got ${(iss.input as string).length} (shorten it)`,
    })
    .optional();

const keyPrefix = z
  .string({ error: (iss) => `must be a string such as "dances/", got ${describeValue(iss.input)} (or leave it out for BUCKET_KEY_PREFIX)` })
  .refine((s) => keyPrefixMessage(s) === undefined, { error: (iss) => keyPrefixMessage(iss.input as string) });

const seedRule = (maxSeed: number): NumberRule => ({
  min: 0,
  max: maxSeed,
  integer: true,
  scope: '',
  example: 1234,
  omitted: 'a random seed',
});

function numberField(rule: NumberRule) {
  return z
    .number({ error: (iss) => numberMessage(iss.input, rule) })
    .refine((v) => fits(v, rule), { error: (iss) => numberMessage(iss.input, rule) })
    .optional();
}

/**
 * Each ranged field's rule for one variant, or, for a name that is not a variant (`undefined`), the
 * widest bounds any variant allows. A bound every variant shares is stated without a variant's name.
 */
function numberRules<V extends string>(
  variants: Readonly<Record<V, VariantLimits>>,
  variant: V | undefined,
  defaultVariant: V,
): Record<RangedField, NumberRule> {
  const all = Object.values<VariantLimits>(variants);
  const rules = {} as Record<RangedField, NumberRule>;
  for (const field of Object.keys(INTEGER_FIELDS) as RangedField[]) {
    const bounds = all.map((v) => v.bounds[field]);
    const first = bounds[0] as NumberBounds;
    const shared = bounds.every((b) => b.min === first.min && b.max === first.max && b.multipleOf === first.multipleOf);
    const sharedMultiple = bounds.every((b) => b.multipleOf === first.multipleOf) ? first.multipleOf : undefined;
    const picked: NumberBounds = shared
      ? first
      : variant !== undefined
        ? variants[variant].bounds[field]
        : {
            min: Math.min(...bounds.map((b) => b.min)),
            max: Math.max(...bounds.map((b) => b.max)),
            ...(sharedMultiple ? { multipleOf: sharedMultiple } : {}),
          };
    const defaults = all.map((v) => v.defaults[field]);
    const ownDefault = variants[variant ?? defaultVariant].defaults[field];
    rules[field] = {
      min: picked.min,
      max: picked.max,
      integer: INTEGER_FIELDS[field],
      ...(picked.multipleOf ? { multipleOf: picked.multipleOf } : {}),
      ...(field === 'num_frames' ? { fourNPlusOne: true } : {}),
      scope: shared ? '' : variant !== undefined ? ` for variant "${variant}"` : ', depending on the variant',
      example: ownDefault,
      omitted: defaults.every((d) => d === ownDefault) || variant !== undefined ? `the default ${ownDefault}` : "the variant's default",
    };
  }
  return rules;
}

/** The input object, checking numbers against `rules` (one variant's bounds). */
function inputObject<V extends string>(
  names: readonly [V, ...V[]],
  defaultVariant: V,
  rules: Record<RangedField, NumberRule>,
  fields: FieldLimits,
) {
  const quoted = names.map((n) => `"${n}"`).join(', ');
  return z.strictObject({
    reference_image: mediaSource,
    pose_video: mediaSource,
    variant: z
      .enum(names, {
        error: (iss) =>
          `must be one of ${quoted}, got ${describeValue(iss.input)} (send one of these, or leave it out for "${defaultVariant}")`,
      })
      .default(defaultVariant),
    width: numberField(rules.width),
    height: numberField(rules.height),
    num_frames: numberField(rules.num_frames),
    fps: numberField(rules.fps),
    seed: numberField(seedRule(fields.maxSeed)),
    prompt: text('prompt', fields.maxPromptChars),
    negative_prompt: text('negative_prompt', fields.maxPromptChars),
    steps: numberField(rules.steps),
    cfg: numberField(rules.cfg),
    shift: numberField(rules.shift),
    output: z
      .strictObject(
        {
          crf: numberField(rules.crf),
          key_prefix: keyPrefix.optional(),
        },
        {
          error: (iss) =>
            iss.code === 'invalid_type'
              ? `must be an object such as {"crf": 19, "key_prefix": "dances/"}, got ${describeValue(iss.input)} (or leave it out)`
              : undefined,
        },
      )
      .optional(),
  });
}

type InputObject<V extends string> = ReturnType<typeof inputObject<V>>;

export interface JobInputSchema<V extends string> {
  /** The input's fields (the README's input table is checked against them). */
  readonly shape: InputObject<V>['shape'];
  /**
   * The object schema for `raw`, with the bounds of the variant it names. Every field is checked on
   * its own, so every problem is reported at once: a wrong type never hides another field's range.
   */
  schemaFor(raw: Readonly<Record<string, unknown>>): InputObject<V>;
}

export function createJobInputSchema<V extends string>(
  variants: Readonly<Record<V, VariantLimits>>,
  defaultVariant: NoInfer<V>,
  fields: FieldLimits,
): JobInputSchema<V> {
  const names = Object.keys(variants) as [V, ...V[]];
  const byVariant = new Map<unknown, InputObject<V>>(
    names.map((v) => [v, inputObject(names, defaultVariant, numberRules(variants, v, defaultVariant), fields)]),
  );
  const unknownVariant = inputObject(names, defaultVariant, numberRules(variants, undefined, defaultVariant), fields);
  const chosen = byVariant.get(defaultVariant) as InputObject<V>;
  return {
    shape: chosen.shape,
    schemaFor: (raw) => (raw.variant === undefined ? chosen : (byVariant.get(raw.variant) ?? unknownVariant)),
  };
}

export type JobInput<V extends string = string> = z.infer<InputObject<V>>;

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
function describeIssues<V extends string>(error: z.ZodError, shape: InputObject<V>['shape']): { message: string; fields: string[] } {
  const parts: string[] = [];
  const fields: string[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      const top = issue.path.length === 0;
      const outputFields = Object.keys(shape.output.unwrap().shape);
      const known = top ? Object.keys(shape) : outputFields;
      // A field put in the wrong object is pointed to its place (crf at the top → output; width in output → the top).
      const elsewhere = Object.fromEntries(
        (top ? outputFields : Object.keys(shape)).map((k) => [k, top ? 'under "output"' : 'at the top level of input']),
      );
      for (const key of issue.keys) {
        const field = [...issue.path, key].join('.');
        fields.push(field);
        parts.push(`${field}: ${unknownFieldMessage(key, known, elsewhere)}`);
      }
      continue;
    }
    const field = issue.path.join('.');
    fields.push(field);
    parts.push(`${field}: ${issue.message}`);
  }
  return { message: parts.join('; '), fields };
}

export function parseJobInput<V extends string>(
  schema: JobInputSchema<V>,
  variants: Readonly<Record<V, VariantLimits>>,
  raw: unknown,
  randomSeed: () => number,
): ResolvedJobInput<V> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw jobError('INVALID_INPUT', 'input must be a JSON object with reference_image and pose_video', {
      details: { field: 'input' },
    });
  }
  const parsed = schema.schemaFor(raw as Record<string, unknown>).safeParse(raw);
  if (!parsed.success) {
    const { message, fields } = describeIssues(parsed.error, schema.shape);
    throw jobError('INVALID_INPUT', message, { details: { fields } });
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
