import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { JOB_ERROR_CODES, jobError } from '../../src/job/errors';
import { isWorkerError } from '../../src/lib/errors';

describe('the job error codes', () => {
  it("is the list README's error table documents (a worker's CONFIG_INVALID and a bug's INTERNAL aside)", () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const table = readme.slice(readme.indexOf('### Errors'), readme.indexOf('<!-- section: variants -->'));
    const documented = [...table.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect(documented.length).toBeGreaterThan(0);
    expect(new Set(documented)).toEqual(new Set(JOB_ERROR_CODES.filter((c) => c !== 'CONFIG_INVALID' && c !== 'INTERNAL')));
  });

  it('makes WorkerErrors of its own codes', () => {
    const e = jobError('MODEL_MISSING', 'variant "turbo" needs model files this image lacks', { details: { field: 'variant' } });
    expect(isWorkerError(e, 'MODEL_MISSING')).toBe(true);
    expect(e.details).toEqual({ field: 'variant' });
  });
});
