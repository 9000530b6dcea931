// `npm run bench:prefetch -- --comfy-dir C --models M [--python P]`: runs bench/prefetch.ts (bench/bundled.mjs says how).
import { inBenchDir, runBundled } from './bundled.mjs';

process.exitCode = await inBenchDir('prefetch', (dir) => runBundled('bench/prefetch.ts', dir, process.argv.slice(2)));
