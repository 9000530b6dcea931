// Re-records workflows/object_info.json from a running ComfyUI that has the pinned custom nodes
// (workflows/pins.json) and files at the workflows/models.json paths (empty placeholders do), and
// with --submit also POSTs every template to /prompt so ComfyUI's own validation judges it.
// A submitted prompt that passes validation is queued: with placeholders it fails at the first
// model loader; on a GPU box with real weights it runs (needs reference.png + pose.mp4 in input/).
//
//   node workflows/tools/record-object-info.mjs --url http://127.0.0.1:8188 [--submit]
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const dir = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const args = process.argv.slice(2);
const url = (args[args.indexOf('--url') + 1] ?? 'http://127.0.0.1:8188').replace(/\/$/, '');
const submit = args.includes('--submit');
const VARIANTS = ['turbo', 'turbo-rcm', 'turbo-fp8', 'quality'];
const templates = Object.fromEntries(VARIANTS.map((v) => [v, JSON.parse(readFileSync(path.join(dir, `${v}.json`), 'utf8'))]));

async function getJson(route, init) {
  const res = await globalThis.fetch(`${url}${route}`, { ...init, signal: globalThis.AbortSignal.timeout(60_000) });
  // Keep integers beyond 2^53 exact (WanVideoSampler's seed max is 2^64-1).
  const exact = (_key, value, ctx) =>
    typeof value === 'number' && Number.isInteger(value) && !Number.isSafeInteger(value) ? JSON.rawJSON(ctx.source) : value;
  return { status: res.status, body: JSON.parse(await res.text(), exact) };
}

const classes = [...new Set(Object.values(templates).flatMap((t) => Object.values(t).map((n) => n.class_type)))].sort();
const { body: all } = await getJson('/object_info');
const { body: stats } = await getJson('/system_stats');
const missing = classes.filter((c) => !all[c]);
if (missing.length > 0) {
  console.error(`not loaded in ComfyUI: ${missing.join(', ')}`);
  process.exit(1);
}
const previous = JSON.parse(readFileSync(path.join(dir, 'object_info.json'), 'utf8'));
const recorded = {
  $comment: previous.$comment,
  recorded_with: {
    comfyui_version: stats.system.comfyui_version,
    python_version: stats.system.python_version.split(' ')[0],
    pytorch_version: stats.system.pytorch_version,
  },
  object_info: Object.fromEntries(classes.map((c) => [c, all[c]])),
};
writeFileSync(path.join(dir, 'object_info.json'), `${JSON.stringify(recorded, null, 1)}\n`);
console.log(`recorded ${classes.length} classes from ComfyUI ${stats.system.comfyui_version}`);

let failed = false;
for (const [variant, prompt] of submit ? Object.entries(templates) : []) {
  const { status, body } = await getJson('/prompt', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt, client_id: 'record-object-info' }),
  });
  const ok = status === 200 && Object.keys(body.node_errors ?? {}).length === 0;
  failed ||= !ok;
  console.log(`${variant}: ${ok ? 'accepted' : `REJECTED ${JSON.stringify(body)}`}`);
}
process.exit(failed ? 1 : 0);
