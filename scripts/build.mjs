// Bundles handler/ into one CommonJS file for the image: dist/handler.cjs (+ source map).
// CJS, not ESM: esbuild's ESM output breaks on the AWS SDK's dynamic require of node:https.
// `--outfile <path>` writes elsewhere with the same options (the e2e tests and bench bundle to a temp dir).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const options = {
  // paths below are relative to the checkout, whatever the cwd
  absWorkingDir: path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..'),
  entryPoints: ['handler/index.ts'],
  outfile: 'dist/handler.cjs',
  bundle: true,
  platform: 'node',
  target: 'node22',
  format: 'cjs',
  sourcemap: true,
  minify: true,
  legalComments: 'linked',
  logLevel: 'warning',
};

const at = process.argv.indexOf('--outfile');
if (at >= 0 && !process.argv[at + 1]) throw new Error('--outfile needs a path');
await build(at >= 0 ? { ...options, outfile: path.resolve(process.argv[at + 1]) } : options);
