// Bundles handler/ into one CommonJS file for the image: dist/handler.cjs (+ source map).
// CJS, not ESM: esbuild's ESM output breaks on the AWS SDK's dynamic require of node:https.
// `--outfile <path>` writes elsewhere with the same options (the e2e tests and bench bundle to a temp dir).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const at = process.argv.indexOf('--outfile');
const outfile = at >= 0 ? process.argv[at + 1] : path.join(root, 'dist/handler.cjs');
if (!outfile) throw new Error('--outfile needs a path');

await build({
  entryPoints: [path.join(root, 'handler/index.ts')],
  outfile: path.resolve(outfile),
  bundle: true,
  platform: 'node',
  target: 'node22',
  format: 'cjs',
  sourcemap: true,
  minify: true,
  legalComments: 'linked',
  logLevel: 'warning',
});
