import { describe, expect, it } from '@jest/globals';
import { cacheableMemoryBytes } from '../../src/lib/cacheable-memory';

const GIB = 1024 ** 3;
const files = (entries: Record<string, string>) => (file: string) => {
  const v = entries[file];
  if (v === undefined) throw Object.assign(new Error(`ENOENT: ${file}`), { code: 'ENOENT' });
  return v;
};

describe('cacheableMemoryBytes', () => {
  it('is the free memory, within a cgroup v2 limit less what the container already uses', () => {
    const v2 = { '/sys/fs/cgroup/memory.max': `${32 * GIB}\n`, '/sys/fs/cgroup/memory.current': `${4 * GIB}\n` };
    expect(cacheableMemoryBytes(files(v2), 100 * GIB)).toBe(28 * GIB);
    expect(cacheableMemoryBytes(files(v2), 10 * GIB)).toBe(10 * GIB);
  });

  it('ignores "no limit" (v2 max, v1 near 2^63) and a host without cgroup files', () => {
    expect(cacheableMemoryBytes(files({ '/sys/fs/cgroup/memory.max': 'max\n', '/sys/fs/cgroup/memory.current': '1' }), 50 * GIB)).toBe(
      50 * GIB,
    );
    const v1 = {
      '/sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712',
      '/sys/fs/cgroup/memory/memory.usage_in_bytes': `${GIB}`,
    };
    expect(cacheableMemoryBytes(files(v1), 50 * GIB)).toBe(50 * GIB);
    expect(cacheableMemoryBytes(files({ ...v1, '/sys/fs/cgroup/memory/memory.limit_in_bytes': `${8 * GIB}` }), 50 * GIB)).toBe(7 * GIB);
    expect(cacheableMemoryBytes(files({}), 50 * GIB)).toBe(50 * GIB);
  });
});
