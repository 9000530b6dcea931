// builder/derive_model.py, the build step that makes turbo-fp8's model: a LoRA merged into the diffusion
// weights and the block linears re-quantized to scaled float8. Inputs are small safetensors files written
// here by an independent writer; the output is read back by an independent reader and every value is
// checked against NumPy's own merge. Manifest mode downloads its inputs from a loopback "Hugging Face".
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { builderPython } from '../gpu/hook-python';
import { ROOT, run } from './helpers';

const SCRIPT = path.join(ROOT, 'builder/derive_model.py');

// Writes base/LoRA files (fp16 or scaled-fp8 base, rank-4 LoRA with alpha, a diff_b on a bias) and, with
// `check`, reads a derived file back and compares it with a float32 merge done here.
const HELPER = String.raw`
import json, struct, sys
import numpy as np, ml_dtypes
F8 = np.dtype(ml_dtypes.float8_e4m3fn); BF16 = np.dtype(ml_dtypes.bfloat16)
CODE = {np.dtype(np.float16): "F16", np.dtype(np.float32): "F32", F8: "F8_E4M3", BF16: "BF16"}
DT = {v: k for k, v in CODE.items()}

def write(path, tensors):
    header, blobs, off = {}, [], 0
    for k, a in tensors.items():
        b = np.ascontiguousarray(a).tobytes()
        header[k] = {"dtype": CODE[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    raw = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))

def read(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8]); h = json.loads(data[8:8 + n]); meta = h.pop("__metadata__", {})
    out = {k: np.frombuffer(data[8 + n + e["data_offsets"][0]:8 + n + e["data_offsets"][1]], DT[e["dtype"]]).reshape(e["shape"]) for k, e in h.items()}
    return out, {k: e["dtype"] for k, e in h.items()}, meta

rng = np.random.default_rng(7)
def base_tensors(scaled):
    t = {}
    for b in range(2):
        for lin, shape in (("self_attn.q", (32, 32)), ("self_attn.o", (32, 32)), ("ffn.0", (64, 32)), ("ffn.2", (32, 64))):
            w = (rng.standard_normal(shape) * 0.02).astype(np.float32)
            if scaled:
                s = np.float32(np.abs(w).max() / 448)
                t[f"blocks.{b}.{lin}.weight"] = (w / s).astype(F8); t[f"blocks.{b}.{lin}.scale_weight"] = np.array(s, np.float32)
            else:
                t[f"blocks.{b}.{lin}.weight"] = w.astype(np.float16)
            t[f"blocks.{b}.{lin}.bias"] = (rng.standard_normal(shape[0]) * 0.01).astype(BF16 if scaled else np.float16)
        t[f"blocks.{b}.norm3.weight"] = np.ones(32, BF16 if scaled else np.float16)
        t[f"blocks.{b}.modulation"] = (rng.standard_normal((1, 6, 32)) * 0.1).astype(BF16 if scaled else np.float16)
    t["head.head.weight"] = (rng.standard_normal((16, 32)) * 0.02).astype(BF16 if scaled else np.float16)
    if scaled: t["scaled_fp8"] = np.zeros(0, F8)
    return t

def lora_tensors(extra=None):
    t = {}
    for b in range(2):
        for lin, (o, i) in (("self_attn.q", (32, 32)), ("ffn.0", (64, 32))):
            p = f"diffusion_model.blocks.{b}.{lin}"
            t[p + ".lora_down.weight"] = (rng.standard_normal((4, i)) * 0.1).astype(BF16)
            t[p + ".lora_up.weight"] = (rng.standard_normal((o, 4)) * 0.1).astype(BF16)
            t[p + ".alpha"] = np.array(2.0, np.float32)
    t["diffusion_model.blocks.0.self_attn.o.diff_b"] = np.full(32, 0.5, BF16)
    t.update(extra or {})
    return t

def f32(t, k):
    w = t[k].astype(np.float32)
    s = k.removesuffix(".weight") + ".scale_weight"
    return w * t[s].astype(np.float32) if k.endswith(".weight") and s in t else w

cmd = sys.argv[1]
if cmd == "inputs":
    d, scaled = sys.argv[2], sys.argv[3] == "scaled"
    extra = {}
    if len(sys.argv) > 4 and sys.argv[4] == "unknown-key": extra = {"diffusion_model.blocks.0.self_attn.q.lora_mid.weight": np.zeros(4, BF16)}
    if len(sys.argv) > 4 and sys.argv[4] == "missing-target":
        extra = {"diffusion_model.blocks.9.self_attn.q.lora_down.weight": np.zeros((4, 32), BF16),
                 "diffusion_model.blocks.9.self_attn.q.lora_up.weight": np.zeros((32, 4), BF16)}
    write(f"{d}/base.safetensors", base_tensors(scaled)); write(f"{d}/lora.safetensors", lora_tensors(extra))
elif cmd == "check":
    base, _, _ = read(sys.argv[2]); lora, _, _ = read(sys.argv[3]); out, dtypes, meta = read(sys.argv[4]); strength = float(sys.argv[5])
    facts = {"dtypes": {}, "errors": {}, "scale_ok": True, "untouched_equal": True, "meta": meta}
    for k in out:
        facts["dtypes"][k] = dtypes[k]
    for k in base:
        if k == "scaled_fp8" or k.endswith(".scale_weight"): continue
        want = f32(base, k)
        p = "diffusion_model." + k.removesuffix(".weight").removesuffix(".bias")
        if k.endswith(".weight") and p + ".lora_down.weight" in lora:
            down = lora[p + ".lora_down.weight"].astype(np.float32); up = lora[p + ".lora_up.weight"].astype(np.float32)
            want = want + strength * float(lora[p + ".alpha"]) / down.shape[0] * (up @ down)
        if k.endswith(".bias") and p + ".diff_b" in lora:
            want = want + strength * lora[p + ".diff_b"].astype(np.float32)
        got = f32(out, k)
        facts["errors"][k] = float(np.linalg.norm(got - want) / np.linalg.norm(want))
        s = k.removesuffix(".weight") + ".scale_weight"
        if s in out and not np.isclose(float(out[s]), np.abs(want).max() / 448, rtol=1e-6): facts["scale_ok"] = False
        if dtypes[k] == "BF16" and not np.array_equal(out[k], want.astype(BF16)): facts["untouched_equal"] = False
    print(json.dumps(facts))
`;

let python = '';
let dir = '';

async function helper(...args: string[]) {
  const r = await run(python, ['-c', HELPER, ...args], { timeoutMs: 60_000 });
  expect(r.stderr).toBe('');
  return r.stdout;
}

interface Facts {
  dtypes: Record<string, string>;
  errors: Record<string, number>;
  scale_ok: boolean;
  untouched_equal: boolean;
  meta: Record<string, string>;
}

async function derive(sub: string, kind: 'fp16' | 'scaled', strength = 1, variant?: string) {
  const d = path.join(dir, sub);
  await run('mkdir', ['-p', d]);
  await helper('inputs', d, kind, ...(variant ? [variant] : []));
  const out = path.join(d, 'out', 'merged.safetensors');
  const r = await run(
    python,
    [SCRIPT, '--base', `${d}/base.safetensors`, '--lora', `${d}/lora.safetensors`, '--out', out, '--strength', String(strength)],
    {
      timeoutMs: 60_000,
    },
  );
  return { d, out, r };
}

beforeAll(async () => {
  python = await builderPython();
  dir = mkdtempSync(path.join(os.tmpdir(), 'sd-derive-'));
}, 900_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('derive_model.py merge-lora-fp8-scaled', () => {
  it.each(['fp16', 'scaled'] as const)(
    'from a %s base: block linears scaled float8, the rest bf16, every value the float32 merge',
    async (kind) => {
      const { d, out, r } = await derive(`merge-${kind}`, kind, 0.8);
      expect(r.code).toBe(0);
      const facts = JSON.parse(await helper('check', `${d}/base.safetensors`, `${d}/lora.safetensors`, out, '0.8')) as Facts;
      // The layout WanVideoModelLoader detects as fp8_e4m3fn_scaled.
      expect(facts.dtypes['blocks.0.self_attn.q.weight']).toBe('F8_E4M3');
      expect(facts.dtypes['blocks.1.ffn.2.scale_weight']).toBe('F32');
      expect(facts.dtypes['scaled_fp8']).toBe('F8_E4M3');
      for (const k of ['blocks.0.self_attn.q.bias', 'blocks.0.norm3.weight', 'blocks.0.modulation', 'head.head.weight'])
        expect(facts.dtypes[k]).toBe('BF16');
      expect(Object.keys(facts.dtypes).filter((k) => k.endsWith('.scale_weight'))).toHaveLength(8);
      // Merged in float32, rounded once to float8 (3 mantissa bits): a few percent at most; bf16 tensors exact.
      for (const [k, e] of Object.entries(facts.errors)) {
        if (facts.dtypes[k] === 'F8_E4M3') expect(e).toBeLessThan(0.04);
        else expect(e).toBeLessThan(0.005);
      }
      expect(facts.scale_ok).toBe(true);
      expect(facts.untouched_equal).toBe(true);
      expect(JSON.parse(facts.meta['derived']!)).toMatchObject({ recipe: 'merge-lora-fp8-scaled', strength: 0.8 });
      expect(r.stdout).toMatch(/"quantized": 8, "patched": 5/);
      expect(r.stdout).toMatch(/"sha256": "[0-9a-f]{64}"/);
    },
  );

  it('the merge is really applied: without it the patched weights would be far off', async () => {
    const { d, out } = await derive('strength0', 'fp16', 0);
    const facts = JSON.parse(await helper('check', `${d}/base.safetensors`, `${d}/lora.safetensors`, out, '1')) as Facts;
    expect(facts.errors['blocks.0.self_attn.q.weight']).toBeGreaterThan(0.1);
    expect(facts.errors['blocks.0.self_attn.o.bias']).toBeGreaterThan(0.1);
    expect(facts.errors['blocks.0.ffn.2.weight']).toBeLessThan(0.04); // not patched at all
  });

  it.each([
    ['unknown-key', /LoRA key diffusion_model\.blocks\.0\.self_attn\.q\.lora_mid\.weight: unknown kind/],
    ['missing-target', /the LoRA patches tensors the base model lacks: blocks\.9\.self_attn\.q\.weight/],
  ])('refuses a LoRA with %s, leaving no file behind', async (variant, message) => {
    const { out, r } = await derive(`bad-${variant}`, 'fp16', 1, variant);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(path.dirname(out)) ? readdirSync(path.dirname(out)) : []).toEqual([]);
  });
});

describe('derive_model.py from the manifest', () => {
  let server: http.Server;
  let files: Record<string, Buffer>;
  beforeAll(async () => {
    const { d } = await derive('inputs-for-manifest', 'fp16');
    files = {
      '/org/base/resolve/main/base.safetensors': readFileSync(`${d}/base.safetensors`),
      '/org/lora/resolve/main/lora.safetensors': readFileSync(`${d}/lora.safetensors`),
    };
    server = http.createServer((req, res) => {
      const body = files[req.url ?? ''];
      if (!body) res.writeHead(404).end('Entry not found');
      else res.writeHead(200, { 'content-length': body.length, etag: '"x"' }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  }, 120_000);
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('downloads base and LoRA, writes the entry at its path, and removes the inputs', async () => {
    const manifest = path.join(dir, 'models.json');
    const entry = (id: string, folder: string, p: string, repo: string) => ({
      id,
      role: 'x',
      folder,
      path: p,
      source: { hf_repo: repo, hf_path: path.basename(p) },
      bytes: null,
      sha256: null,
      precisions: ['fp16'],
      variants: ['turbo'],
    });
    writeFileSync(
      manifest,
      JSON.stringify({
        files: [
          entry('base', 'diffusion_models', 'base.safetensors', 'org/base'),
          entry('lora', 'loras', 'lora.safetensors', 'org/lora'),
          {
            id: 'merged',
            role: 'diffusion_model',
            folder: 'diffusion_models',
            path: 'sub/merged.safetensors',
            derive: { recipe: 'merge-lora-fp8-scaled', base: 'base', lora: 'lora', strength: 1 },
            precisions: ['fp8'],
            variants: ['turbo-fp8'],
          },
        ],
      }),
    );
    const dest = path.join(dir, 'dest');
    const env = { ...process.env, HF_ENDPOINT: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, HF_TOKEN: '' };
    const r = await run(python, [SCRIPT, '--manifest', manifest, '--dest', dest, '--ids', 'merged'], { env, timeoutMs: 60_000 });
    expect(r.code).toBe(0);
    expect(existsSync(path.join(dest, 'diffusion_models/sub/merged.safetensors'))).toBe(true);
    expect(readdirSync(dest).sort()).toEqual(['diffusion_models']); // scratch inputs gone
    const again = await run(python, [SCRIPT, '--manifest', manifest, '--dest', dest, '--ids', 'merged'], { env, timeoutMs: 60_000 });
    expect(again.stdout).toContain('merged: already present');
    const bad = await run(python, [SCRIPT, '--manifest', manifest, '--dest', dest, '--ids', 'base'], { env, timeoutMs: 60_000 });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('base is not a derived entry');
  });
});
