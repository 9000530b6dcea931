// Bundles handler/ into one CommonJS file for the image: dist/handler.cjs (+ source map).
// CJS, not ESM: esbuild's ESM output breaks on the AWS SDK's dynamic require of node:https.
import { build } from 'esbuild';

await build({
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
});
