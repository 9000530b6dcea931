'use strict';
/* global require, module, __dirname, __filename */
/* eslint-disable @typescript-eslint/no-require-imports -- CommonJS on purpose: it runs on any Node */
// dist/handler.cjs, the worker's command (`node dist/handler.cjs [flags]`). scripts/build.mjs copies this
// file as it is beside the bundle (dist/handler-main.cjs). It is plain, old-fashioned JavaScript on purpose:
// it must run on any Node, before the bundle (which an old Node cannot run) is even parsed.
var parts = process.versions.node.split('.');
var major = Number(parts[0]);
var minor = Number(parts[1]);
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write('steadydancer-worker needs Node >= 22.12, found ' + process.version + '\n');
  process.exit(1);
}

// V8's compiled code for the bundle is kept on disk and reused by every later start: the image fills
// it at build time (the Dockerfile loads this file once). NODE_COMPILE_CACHE, when set, wins;
// NODE_DISABLE_COMPILE_CACHE=1 turns it off. A cache that cannot be written is skipped, never fatal.
require('node:module').enableCompileCache(require('node:path').join(__dirname, '.compile-cache'));

var worker = require(__filename.replace(/\.cjs$/, '-main.cjs'));
// Loaded as a module (the image build's warm-up), it only compiles the bundle; run as the command, it starts.
if (require.main === module) worker.start();
