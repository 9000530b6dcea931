// The job fields' rules in words. Every refusal says the field's bound, what was sent and what to
// send instead (the nearest valid value where there is one), never a validation library's default text.

export interface NumberRule {
  readonly min: number;
  readonly max: number;
  readonly integer: boolean;
  readonly multipleOf?: number;
  /** num_frames: the model takes 4n+1 frames. */
  readonly fourNPlusOne?: boolean;
  /** ` for variant "turbo"` where the bound depends on the variant; '' where every variant shares it. */
  readonly scope: string;
  /** A valid value to show when what was sent is not a number at all. */
  readonly example: number;
  /** What leaving the field out gives: "the default 19", "a random seed". */
  readonly omitted: string;
}

export function fits(value: number, rule: NumberRule): boolean {
  return (
    Number.isFinite(value) &&
    (!rule.integer || Number.isInteger(value)) &&
    value >= rule.min &&
    value <= rule.max &&
    (!rule.multipleOf || value % rule.multipleOf === 0) &&
    (!rule.fourNPlusOne || (value - 1) % 4 === 0)
  );
}

/** The valid value closest to `value`: what a message suggests sending. */
export function nearest(value: number, rule: NumberRule): number {
  const step = rule.fourNPlusOne ? 4 : (rule.multipleOf ?? (rule.integer ? 1 : 0));
  if (step === 0) return Math.min(rule.max, Math.max(rule.min, value));
  const offset = rule.fourNPlusOne ? 1 : 0;
  const lowest = Math.ceil((rule.min - offset) / step) * step + offset;
  const highest = Math.floor((rule.max - offset) / step) * step + offset;
  return Math.min(highest, Math.max(lowest, Math.round((value - offset) / step) * step + offset));
}

export function describeRule(rule: NumberRule): string {
  if (rule.min === rule.max) return `${rule.min}${rule.scope}`;
  const kind = rule.integer ? 'a whole number' : 'a number';
  const form = rule.fourNPlusOne ? ' of the form 4n+1 (49, 81, 161…)' : rule.multipleOf ? ` and a multiple of ${rule.multipleOf}` : '';
  return `${kind} from ${rule.min} to ${rule.max}${form}${rule.scope}`;
}

/** A sent value for messages: short, typed ("the string \"4\"", "null", "an object"). */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return String(value);
}

export function numberMessage(value: unknown, rule: NumberRule): string {
  const asNumber = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  let send: string;
  if (!Number.isFinite(asNumber)) send = `a number such as ${rule.example}`;
  else if (typeof value === 'string') send = `${nearest(asNumber, rule)} as a number, not a string`;
  else send = String(nearest(asNumber, rule));
  return `must be ${describeRule(rule)}, got ${describeValue(value)} (send ${send}, or leave it out for ${rule.omitted})`;
}

const MAX_KEY_PREFIX_CHARS = 200;
const KEY_PREFIX_CHARS = /[^A-Za-z0-9!_.*'()/-]/;

/** Why a key prefix would make a bad or surprising object key, and what to send instead; undefined when it is fine. */
export function keyPrefixMessage(prefix: string): string | undefined {
  const problem = keyPrefixProblem(prefix);
  if (problem === undefined) return undefined;
  const send = prefix.length > MAX_KEY_PREFIX_CHARS ? 'a shorter one' : JSON.stringify(cleanKeyPrefix(prefix));
  return `${problem} (send ${send}, or leave it out for BUCKET_KEY_PREFIX)`;
}

function keyPrefixProblem(prefix: string): string | undefined {
  if (prefix.length > MAX_KEY_PREFIX_CHARS) return `must be at most ${MAX_KEY_PREFIX_CHARS} characters, got ${prefix.length}`;
  const bad = KEY_PREFIX_CHARS.exec(prefix)?.[0];
  if (bad !== undefined) return `may contain only letters, digits and !_.*'()/-, got ${JSON.stringify(bad)}`;
  // A leading "/" or an empty, "." or ".." segment makes a key that some S3 clients and CDNs rewrite.
  if (prefix.startsWith('/')) return 'must not start with "/"';
  const segments = prefix.split('/');
  if (segments.includes('..') || segments.includes('.')) return 'must not contain "." or ".." segments';
  if (segments.slice(0, -1).includes('')) return 'must not contain empty segments ("//")';
  return undefined;
}

/** The prefix with its problems removed (same trailing "/"), for the message's suggestion. */
function cleanKeyPrefix(prefix: string): string {
  const segments = prefix
    .replace(new RegExp(KEY_PREFIX_CHARS.source, 'g'), '-')
    .split('/')
    .filter((s) => s !== '' && s !== '.' && s !== '..');
  const joined = segments.join('/');
  if (joined === '') return 'dances/';
  return prefix.endsWith('/') ? `${joined}/` : joined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j] as number;
      row[j] = Math.min(above + 1, (row[j - 1] as number) + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length] as number;
}

/**
 * The message for a field the schema does not know: where it belongs when it is a field of another
 * object (`elsewhere`: name → 'under "output"'), else the likely intended field, else the accepted ones.
 */
export function unknownFieldMessage(name: string, known: readonly string[], elsewhere: Readonly<Record<string, string>> = {}): string {
  const home = Object.hasOwn(elsewhere, name) ? elsewhere[name] : undefined;
  if (home !== undefined) return `unknown field here (it belongs ${home})`;
  const lower = name.toLowerCase();
  const close = (k: string): boolean => {
    const distance = editDistance(lower, k.toLowerCase());
    return distance <= 2 && distance < lower.length / 2;
  };
  const guess = known.find((k) => k.toLowerCase() === lower) ?? known.find(close);
  return guess ? `unknown field (did you mean "${guess}"?)` : `unknown field (accepted here: ${known.join(', ')})`;
}
