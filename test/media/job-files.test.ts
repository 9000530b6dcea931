import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { createJobFiles } from '../../src/media/job-files';

describe('createJobFiles', () => {
  const roots: string[] = [];
  afterAll(async () => Promise.all(roots.map((r) => rm(r, { recursive: true, force: true }))));

  it('gives each job its own dir under workDir and removes it, twice safely', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'jobfiles-'));
    roots.push(root);
    const workDir = path.join(root, 'work');
    const a = await createJobFiles(workDir, 'job/../1');
    const b = await createJobFiles(workDir, 'job/../1');
    expect(a.dir).not.toBe(b.dir);
    expect(path.dirname(a.dir)).toBe(workDir);
    await writeFile(path.join(a.dir, 'x.png'), 'x');
    await Promise.all([a.cleanup(), a.cleanup()]);
    expect(existsSync(a.dir)).toBe(false);
    expect(existsSync(b.dir)).toBe(true);
    await b.cleanup();
    expect(existsSync(b.dir)).toBe(false);
  });
});
