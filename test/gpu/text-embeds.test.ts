// The ComfyUI hook's text-embedding cache placement (docker/comfyui/steadydancer_runtime/text_embeds.py)
// against a stand-in of WanVideoWrapper's nodes module with the same contract as the pinned one: a module
// global `cache_dir`, get_cache_path(prompt) = <cache_dir>/<sha256 of the stripped prompt>.pt, and
// get_cached_text_embeds(positive, negative) loading both (None for a missing or unloadable file).
import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, run } from '../image/helpers';
import { loadHookModule } from './hook-python';

const HOOK = path.join(ROOT, 'docker/comfyui/steadydancer_runtime/text_embeds.py');

const DRIVER = String.raw`
${loadHookModule('text_embeds', 'te')}
import json, os, types
out = {"installed_without_pack": te.install()}

# The wrapper's nodes module, as 2ee9e2f3 has it (torch.load/torch.save stood in by text files).
pack = "/comfyui/custom_nodes/ComfyUI-WanVideoWrapper"
nodes = types.ModuleType(pack + ".nodes")
src = '''
import hashlib, os
cache_dir = os.path.join(SCRIPT_DIR, "text_embed_cache")
def get_cache_path(prompt):
    return os.path.join(cache_dir, hashlib.sha256(prompt.strip().encode("utf-8")).hexdigest() + ".pt")
def _load(p):
    data = open(p).read()
    if data == "broken": raise RuntimeError("PytorchStreamReader failed reading zip archive")
    return data
def get_cached_text_embeds(positive_prompt, negative_prompt):
    os.makedirs(cache_dir, exist_ok=True)
    context = context_null = None
    pos, neg = get_cache_path(positive_prompt), get_cache_path(negative_prompt)
    if os.path.exists(pos):
        try: context = _load(pos)
        except Exception: pass
    if os.path.exists(neg):
        try: context_null = _load(neg)
        except Exception: pass
    return context, context_null
def save(prompt, value):
    p = get_cache_path(prompt)
    if not os.path.exists(p):
        open(p, "w").write(value)
'''
nodes.__dict__["SCRIPT_DIR"] = os.environ["WRAPPER_DIR"]; os.makedirs(os.environ["WRAPPER_DIR"], exist_ok=True)
exec(src, nodes.__dict__)
sys.modules[pack] = types.ModuleType(pack); sys.modules[pack].__path__ = []
sys.modules[pack + ".nodes"] = nodes

out["installed"] = te.install(); te.install()
out["cache_dir"] = nodes.cache_dir
out["first"] = nodes.get_cached_text_embeds("a person dancing", "neg")
nodes.save("a person dancing", "pos-embeds"); nodes.save("neg", "neg-embeds")
out["second"] = nodes.get_cached_text_embeds(" a person dancing ", "neg")
# A write cut short: the file exists but does not load. It goes, so the wrapper can write it again.
open(nodes.get_cache_path("cut"), "w").write("broken")
out["broken"] = nodes.get_cached_text_embeds("cut", "neg")
out["broken_left"] = os.path.exists(nodes.get_cache_path("cut"))
# Over the cap: the oldest files go first (the next lookup after PRUNE_EVERY_S).
for i in range(6):
    p = nodes.get_cache_path(f"p{i}"); open(p, "w").write("x" * 400_000); os.utime(p, (1000 + i, 1000 + i))
os.utime(nodes.get_cache_path("a person dancing"), (5000, 5000)); os.utime(nodes.get_cache_path("neg"), (5000, 5000))
te.PRUNE_EVERY_S = 0
nodes.get_cached_text_embeds("a person dancing", "neg")
out["kept"] = sorted(p for p in [f"p{i}" for i in range(6)] + ["a person dancing", "neg"] if os.path.exists(nodes.get_cache_path(p)))
out["wrapper_dir_files"] = os.listdir(os.environ["WRAPPER_DIR"])
out["log"] = records
print(json.dumps(out))
`;

interface Out {
  installed_without_pack: boolean;
  installed: boolean;
  cache_dir: string;
  first: [string | null, string | null];
  second: [string | null, string | null];
  broken: [string | null, string | null];
  broken_left: boolean;
  kept: string[];
  wrapper_dir_files: string[];
  log: string[];
}

async function scenario(env: Record<string, string>): Promise<{ out: Out; dir: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sd-text-embeds-'));
  writeFileSync(path.join(dir, 'driver.py'), DRIVER);
  const { STEADYDANCER_TEXT_EMBED_DIR: _a, STEADYDANCER_TEXT_EMBED_MAX_MB: _b, ...clean } = process.env;
  const r = await run('python3', [path.join(dir, 'driver.py'), HOOK], {
    env: { ...clean, WRAPPER_DIR: path.join(dir, 'wrapper'), ...env },
  });
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  return { out: JSON.parse(r.stdout) as Out, dir };
}

describe('steadydancer_runtime text-embedding cache', () => {
  it('puts the wrapper cache in the worker folder, finds saved prompts, drops broken files and prunes the oldest', async () => {
    const base = mkdtempSync(path.join(os.tmpdir(), 'sd-embeds-'));
    const target = path.join(base, 'text-embeds', 'umt5-xxl-bf16-4fa971faf306');
    const { out, dir } = await scenario({ STEADYDANCER_TEXT_EMBED_DIR: target, STEADYDANCER_TEXT_EMBED_MAX_MB: '1.5' });
    try {
      expect([out.installed_without_pack, out.installed]).toEqual([false, true]);
      expect(out.cache_dir).toBe(target);
      expect(out.first).toEqual([null, null]);
      expect(out.second).toEqual(['pos-embeds', 'neg-embeds']); // keyed by the stripped prompt, as the wrapper does
      expect(out.broken).toEqual([null, 'neg-embeds']);
      expect(out.broken_left).toBe(false);
      // 6 x 400 kB + two small files against 1.5 MiB: the three oldest go, the recently written prompts stay.
      expect(out.kept).toEqual(['a person dancing', 'neg', 'p3', 'p4', 'p5']);
      expect(out.wrapper_dir_files).toEqual([]); // nothing written inside the custom node
      expect(out.log).toEqual([`steadydancer_runtime: umT5 embeddings cached in ${target} (at most 2 MiB)`]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(base, { recursive: true, force: true });
    }
  });

  it('falls back to a bounded folder in the temporary directory where the named one cannot be made', async () => {
    const { out, dir } = await scenario({ STEADYDANCER_TEXT_EMBED_DIR: '/proc/no-such/umt5-xxl-bf16-4fa971faf306', TMPDIR: os.tmpdir() });
    try {
      expect(out.installed).toBe(true);
      expect(out.cache_dir).toBe(path.join(os.tmpdir(), 'steadydancer-text-embeds', 'umt5-xxl-bf16-4fa971faf306'));
      expect(out.second).toEqual(['pos-embeds', 'neg-embeds']);
      expect(out.wrapper_dir_files).toEqual([]);
      expect(out.log[0]).toMatch(/^steadydancer_runtime: cannot use \/proc\/no-such\/umt5-xxl-bf16-4fa971faf306 for umT5 embeddings/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(path.join(os.tmpdir(), 'steadydancer-text-embeds'), { recursive: true, force: true });
    }
  });

  it('leaves the wrapper alone when the worker names no folder', async () => {
    const { out, dir } = await scenario({});
    try {
      expect(out.installed).toBe(false);
      expect(out.cache_dir).toBe(path.join(dir, 'wrapper', 'text_embed_cache'));
      expect(out.log).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
