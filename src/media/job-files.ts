// Every file a job writes lives in its own temp dir, which goes when the job ends.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../lib/logger';
import { silentLogger } from '../lib/logger';

export interface JobFiles {
  /** The job's private temp directory under workDir. */
  readonly dir: string;
  /** Removes `dir`. Safe to call twice; never throws (a failure is logged). */
  cleanup(): Promise<void>;
}

export async function createJobFiles(workDir: string, jobId: string, logger: Logger = silentLogger): Promise<JobFiles> {
  await mkdir(workDir, { recursive: true });
  const dir = await mkdtemp(path.join(workDir, `job-${jobId.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64)}-`));
  let cleaning: Promise<void> | undefined;

  const remove = async (): Promise<void> => {
    try {
      await rm(dir, { recursive: true, force: true, maxRetries: 2 });
    } catch (error) {
      logger.warn('could not remove a job folder', { path: dir, error });
    }
  };

  return { dir, cleanup: () => (cleaning ??= remove()) };
}
