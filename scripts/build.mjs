// Builds the worker for the image into dist/:
// - dist/handler.cjs: handler/launcher.cjs, copied as it is: checks the Node version (any Node can run
//   it), turns on V8's compile cache, loads the bundle and starts it;
// - dist/handler-main.cjs: handler/index.ts and everything it imports, bundled (+ source map, for
//   `NODE_OPTIONS=--enable-source-maps`).
// CJS, not ESM: esbuild's ESM output breaks on the AWS SDK's dynamic require of node:https.
// The AWS SDK packages load on first use (scripts/lazy-packages.mjs): an idle worker does not need them.
// `--outfile <path>` writes the launcher there and the bundle beside it as `<name>-main.cjs` (the e2e
// tests and benchmarks build into a temp dir).
import { copyFile, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { lazyPackages } from './lazy-packages.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const options = {
  // paths below are relative to the checkout, whatever the cwd
  absWorkingDir: root,
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
  plugins: [lazyPackages(['@aws-sdk/client-s3', '@aws-sdk/lib-storage', '@aws-sdk/s3-request-presigner'], root)],
};

const at = process.argv.indexOf('--outfile');
if (at >= 0 && !process.argv[at + 1]) throw new Error('--outfile needs a path');
const launcher = path.resolve(root, at >= 0 ? process.argv[at + 1] : options.outfile);
if (!launcher.endsWith('.cjs')) throw new Error('--outfile must end in .cjs (the launcher finds the bundle as <name>-main.cjs)');
const bundle = launcher.replace(/\.cjs$/, '-main.cjs');
await mkdir(path.dirname(launcher), { recursive: true });
// A compile cache filled for an older bundle is only dead weight.
await rm(path.join(path.dirname(launcher), '.compile-cache'), { recursive: true, force: true });
await build({ ...options, outfile: bundle });
await copyFile(path.join(root, 'handler/launcher.cjs'), launcher);
