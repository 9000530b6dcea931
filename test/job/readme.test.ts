import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { createJobInputSchema, parseJobInput } from '../../src/job/schema';
import { DEFAULT_VARIANT, VARIANTS } from '../../src/workflow';
import { FIELD_LIMITS, TEST_VARIANTS } from './limits';

/** Field names of the README's input table (first column, backticked, comma-separated). */
function readmeFields(): string[] {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const start = readme.indexOf('<!-- input-table');
  expect(start).toBeGreaterThan(-1);
  const rows = readme.slice(start).split('\n').slice(1);
  const fields: string[] = [];
  for (const row of rows.slice(2)) {
    if (!row.startsWith('|')) break;
    const first = row.split('|')[1] ?? '';
    fields.push(...[...first.matchAll(/`([^`]+)`/g)].map((m) => m[1] as string));
  }
  return fields.sort();
}

function schemaFields(): string[] {
  const shape = createJobInputSchema(TEST_VARIANTS, 'turbo', FIELD_LIMITS).shape;
  const fields: string[] = [];
  for (const [key, value] of Object.entries(shape)) {
    const inner = (value as { unwrap?: () => { shape?: Record<string, unknown> } }).unwrap?.();
    if (inner?.shape) fields.push(...Object.keys(inner.shape).map((k) => `${key}.${k}`));
    else fields.push(key);
  }
  return fields.sort();
}

describe('README input table', () => {
  it('lists exactly the fields of the job input schema', () => {
    expect(readmeFields()).toEqual(schemaFields());
  });
});

describe('shipped example inputs', () => {
  const schema = createJobInputSchema(VARIANTS, DEFAULT_VARIANT, FIELD_LIMITS);
  const parse = (input: unknown) => parseJobInput(schema, VARIANTS, input, () => 1);

  it('test_input.json is a valid job for the real variants', () => {
    const file = JSON.parse(readFileSync(new URL('../../test_input.json', import.meta.url), 'utf8')) as { input: unknown };
    expect(parse(file.input)).toMatchObject({ variant: 'turbo', num_frames: 81 });
  });

  it("the README's input example is a valid job", () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const api = readme.slice(readme.indexOf('## The API'));
    const example = /```json\n([\s\S]*?)\n```/.exec(api)?.[1];
    expect(example).toBeDefined();
    expect(parse(JSON.parse(example as string))).toMatchObject({ seed: 1234, crf: 19, key_prefix: 'dances/' });
  });
});
