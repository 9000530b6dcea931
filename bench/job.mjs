// `npm run bench:job`: runs bench/job.ts (bench/bundled.mjs says how).
import { inBenchDir, runBundled } from './bundled.mjs';

process.exitCode = await inBenchDir('job', (dir) => runBundled('bench/job.ts', dir));
