// Every file a job writes lives in its own temp dir (or is tracked) and goes when the job ends.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../lib/logger';
import { silentLogger } from '../lib/logger';

export interface JobFiles {
  /** The job's private temp directory under workDir. */
  readonly dir: string;
  /** Also remove this file (or directory) at cleanup, e.g. a ComfyUI output outside `dir`. */
  track(filePath: string): void;
  /** Removes `dir` and every tracked path. Safe to call twice; never throws (failures are logged). */
  cleanup(): Promise<void>;
}

export async function createJobFiles(workDir: string, jobId: string, logger: Logger = silentLogger): Promise<JobFiles> {
  await mkdir(workDir, { recursive: true });
  const dir = await mkdtemp(path.join(workDir, `job-${jobId.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64)}-`));
  const tracked = new Set<string>();
  let cleaning: Promise<void> | undefined;

  const removeAll = async (): Promise<void> => {
    for (const p of [dir, ...tracked]) {
      try {
        await rm(p, { recursive: true, force: true, maxRetries: 2 });
      } catch (error) {
        logger.warn('could not remove a job file', { path: p, error });
      }
    }
  };

  return {
    dir,
    track: (filePath) => void tracked.add(path.resolve(filePath)),
    cleanup: () => (cleaning ??= removeAll()),
  };
}
