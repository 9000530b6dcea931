// How much file data the page cache can take without evicting anything: the memory not in use (Node's
// freemem is Linux's MemAvailable), within the container's cgroup limit where one is set (cached file
// pages count against it).
import { readFileSync } from 'node:fs';
import { freemem } from 'node:os';

const CGROUP_FILES = [
  ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory.current'], // cgroup v2
  ['/sys/fs/cgroup/memory/memory.limit_in_bytes', '/sys/fs/cgroup/memory/memory.usage_in_bytes'], // v1
] as const;
// v1 reports "no limit" as a number near 2^63.
const NO_LIMIT = 2 ** 60;

export function cacheableMemoryBytes(read: (file: string) => string = (f) => readFileSync(f, 'utf8'), free: number = freemem()): number {
  let available = free;
  for (const [limitFile, usageFile] of CGROUP_FILES) {
    let limit: number;
    let usage: number;
    try {
      const raw = read(limitFile).trim();
      if (raw === 'max') break;
      limit = Number(raw);
      usage = Number(read(usageFile).trim());
    } catch {
      continue;
    }
    if (Number.isFinite(limit) && Number.isFinite(usage) && limit < NO_LIMIT) available = Math.min(available, limit - usage);
    break;
  }
  return Math.max(0, available);
}
