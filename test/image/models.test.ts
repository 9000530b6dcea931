// The model manifest, the folders ComfyUI's loaders read, the volume map and the workflow graphs agree.
import { describe, expect, it } from '@jest/globals';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { ROOT, read, readJson, type ModelEntry, type ModelManifest } from './helpers';

const manifest = readJson<ModelManifest>('workflows/models.json');

/** Loader node class → (combo input → ComfyUI model folder it lists), per the node packs' code. */
const LOADER_FOLDERS: Record<string, Record<string, string>> = {
  WanVideoModelLoader: { model: 'diffusion_models' },
  WanVideoLoraSelect: { lora: 'loras' },
  WanVideoVAELoader: { model_name: 'vae' },
  CLIPVisionLoader: { clip_name: 'clip_vision' },
  WanVideoTextEncodeCached: { model_name: 'text_encoders' },
  LoadWanVideoT5TextEncoder: { model_name: 'text_encoders' },
  OnnxDetectionModelLoader: { vitpose_model: 'detection', yolo_model: 'detection' },
};
/** Folders a SteadyDancer graph may load from; the network-volume map must cover all of them. */
const WORKFLOW_FOLDERS = ['diffusion_models', 'text_encoders', 'clip_vision', 'vae', 'loras', 'detection'];

type Graph = Record<string, { class_type: string; inputs: Record<string, unknown> }>;

/** Problems with the model files a graph references, for the given variant (if known). */
function checkGraph(graph: Graph, files: ModelEntry[], variant: string | undefined): string[] {
  const problems: string[] = [];
  for (const [id, node] of Object.entries(graph)) {
    const inputs = LOADER_FOLDERS[node.class_type];
    if (!inputs) continue;
    for (const [input, folder] of Object.entries(inputs)) {
      const value = node.inputs[input];
      if (typeof value !== 'string' || /\{\{|\$\{/.test(value)) continue; // a link or a template slot
      const file = files.find((f) => f.path === value);
      if (!file) problems.push(`node ${id} ${node.class_type}.${input} = ${value}: not in models.json`);
      else if (file.folder !== folder)
        problems.push(`node ${id} ${node.class_type}.${input}: ${value} is in ${file.folder}, the loader reads ${folder}`);
      else if (variant && !file.variants.includes(variant)) problems.push(`node ${id}: ${value} is not baked for variant ${variant}`);
    }
  }
  return problems;
}

function jsonFilesUnder(rel: string): string[] {
  const abs = path.join(ROOT, rel);
  if (!existsSync(abs)) return [];
  return readdirSync(abs).flatMap((name) => {
    const child = path.join(rel, name);
    if (statSync(path.join(ROOT, child)).isDirectory()) return jsonFilesUnder(child);
    return name.endsWith('.json') ? [child] : [];
  });
}

function isGraph(value: unknown): value is Graph {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.keys(value).length > 0 &&
    Object.values(value).every((n) => typeof n === 'object' && n !== null && typeof (n as { class_type?: unknown }).class_type === 'string')
  );
}

describe('workflows/models.json', () => {
  it('has unique ids and unique destinations', () => {
    const ids = manifest.files.map((f) => f.id);
    const dests = manifest.files.map((f) => `${f.folder}/${f.path}`);
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(dests).size).toBe(dests.length);
  });

  it('places every file in a folder a SteadyDancer loader reads, under a safe relative path', () => {
    for (const f of manifest.files) {
      expect({ id: f.id, folder: WORKFLOW_FOLDERS.includes(f.folder) }).toEqual({ id: f.id, folder: true });
      expect(f.path).not.toMatch(/(^\/|\\|(^|\/)\.\.(\/|$))/);
      expect(f.precisions.length).toBeGreaterThan(0);
      expect(f.variants.length).toBeGreaterThan(0);
      expect(f.sha256 === null || /^[0-9a-f]{64}$/.test(f.sha256)).toBe(true);
      expect(f.bytes === null || (Number.isInteger(f.bytes) && f.bytes > 0)).toBe(true);
      if (f.source) expect(f.source.hf_repo).toMatch(/^[\w.-]+\/[\w.-]+$/);
      else expect(f.derive?.recipe).toBe('merge-lora-fp8-scaled');
    }
  });

  it('keeps an ONNX external-data file beside its model (ONNX Runtime looks in the same directory)', () => {
    for (const f of manifest.files.filter((x) => x.path.endsWith('_data.bin'))) {
      const dir = path.posix.dirname(f.path);
      const sibling = manifest.files.find((o) => o.folder === f.folder && o.path.endsWith('.onnx') && path.posix.dirname(o.path) === dir);
      expect({ id: f.id, hasModelBeside: Boolean(sibling) }).toEqual({ id: f.id, hasModelBeside: true });
    }
  });
});

describe('workflow graphs load only manifest files, from the folder their loader reads', () => {
  const files: ModelEntry[] = [
    {
      id: 'dm',
      folder: 'diffusion_models',
      path: 'WanVideo/SteadyDancer/a.safetensors',
      source: { hf_repo: 'o/r', hf_path: 'a' },
      bytes: null,
      sha256: null,
      precisions: ['fp8'],
      variants: ['turbo', 'quality'],
    },
    {
      id: 'lora',
      folder: 'loras',
      path: 'Lightx2v/l.safetensors',
      source: { hf_repo: 'o/r', hf_path: 'l' },
      bytes: null,
      sha256: null,
      precisions: ['fp8'],
      variants: ['turbo'],
    },
    {
      id: 'yolo',
      folder: 'detection',
      path: 'onnx/yolov10m.onnx',
      source: { hf_repo: 'o/r', hf_path: 'y' },
      bytes: null,
      sha256: null,
      precisions: ['fp8'],
      variants: ['turbo', 'quality'],
    },
  ];
  const graph = (lora: string, yolo: string): Graph => ({
    '10': { class_type: 'WanVideoModelLoader', inputs: { model: 'WanVideo/SteadyDancer/a.safetensors', base_precision: 'bf16' } },
    '11': { class_type: 'WanVideoLoraSelect', inputs: { lora, strength: 1 } },
    '12': { class_type: 'WanVideoSetLoRAs', inputs: { model: ['10', 0], lora: ['11', 0] } },
    '40': { class_type: 'OnnxDetectionModelLoader', inputs: { yolo_model: yolo, vitpose_model: ['99', 0] } },
  });

  it('the checker accepts a consistent graph and names each kind of fault', () => {
    expect(checkGraph(graph('Lightx2v/l.safetensors', 'onnx/yolov10m.onnx'), files, 'turbo')).toEqual([]);
    expect(checkGraph(graph('Lightx2v/l.safetensors', 'onnx/yolov10m.onnx'), files, 'quality')).toEqual([
      'node 11: Lightx2v/l.safetensors is not baked for variant quality',
    ]);
    expect(checkGraph(graph('Lightx2v/other.safetensors', 'onnx/yolov10m.onnx'), files, undefined)).toEqual([
      'node 11 WanVideoLoraSelect.lora = Lightx2v/other.safetensors: not in models.json',
    ]);
    expect(checkGraph(graph('onnx/yolov10m.onnx', 'onnx/yolov10m.onnx'), files, undefined)).toEqual([
      'node 11 WanVideoLoraSelect.lora: onnx/yolov10m.onnx is in detection, the loader reads loras',
    ]);
  });

  it('holds for every API-format graph in the repo (workflows/, src/workflow/)', () => {
    const variants = new Set(manifest.files.flatMap((f) => f.variants));
    const graphs = [...jsonFilesUnder('workflows'), ...jsonFilesUnder('src/workflow')]
      .map((file) => ({ file, json: readJson<unknown>(file) }))
      .filter((g): g is { file: string; json: Graph } => isGraph(g.json));
    for (const { file, json } of graphs) {
      const base = path.basename(file).replace(/(\.api)?\.json$/, '');
      const variant = variants.has(base) ? base : undefined;
      expect({ file, problems: checkGraph(json, manifest.files, variant) }).toEqual({ file, problems: [] });
    }
    // The pins and the manifest themselves are not graphs.
    expect(isGraph(readJson('workflows/models.json'))).toBe(false);
    expect(isGraph(readJson('workflows/pins.json'))).toBe(false);
  });
});

/** The two-level `name:\n    key: value` shape ComfyUI's extra_model_paths.yaml uses. */
function parseExtraPaths(text: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  let current: Record<string, string> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '');
    if (!line.trim()) continue;
    const top = /^(\S[^:]*):\s*$/.exec(line);
    const entry = /^\s+([^:\s]+):\s*(\S.*?)\s*$/.exec(line);
    if (top) out[top[1]!] = current = {};
    else if (entry && current) current[entry[1]!] = entry[2]!;
    else throw new Error(`extra_model_paths.yaml: cannot read line "${raw}"`);
  }
  return out;
}

describe('docker/extra_model_paths.yaml (network volume)', () => {
  const config = parseExtraPaths(read('docker/extra_model_paths.yaml'));
  const volume = Object.values(config)[0]!;
  const dockerfile = read('Dockerfile');

  it('maps /runpod-volume/models, the same root the volume image gives the worker as MODELS_DIR', () => {
    expect(Object.keys(config)).toHaveLength(1);
    expect(volume.base_path).toBe('/runpod-volume/models');
    expect(dockerfile).toMatch(/FROM runtime-base AS env-volume\nENV MODELS_DIR=\/runpod-volume\/models\n/);
  });

  it('covers every folder the workflows and the manifest use, each at its ComfyUI name', () => {
    const folders = new Set([...WORKFLOW_FOLDERS, ...manifest.files.map((f) => f.folder)]);
    for (const folder of folders) expect({ folder, path: volume[folder] }).toEqual({ folder, path: folder });
  });

  it('is installed beside ComfyUI main.py, where ComfyUI reads it at start', () => {
    expect(dockerfile).toContain('COPY docker/extra_model_paths.yaml /comfyui/extra_model_paths.yaml');
  });

  it('baked models land in ComfyUI models/, the same layout under MODELS_DIR', () => {
    // Each model slot holds <folder>/<path> under /models; the final image copies it into ComfyUI's models/.
    expect(dockerfile).toMatch(/ENV MODELS_DIR=\/comfyui\/models MODEL_PRECISION=\$\{PRECISION\}\n/);
    const slots = dockerfile.match(/^COPY --link --from=model-\S+ \S+ \S+$/gm) ?? [];
    expect(slots.length).toBeGreaterThan(0);
    for (const copy of slots) expect(copy).toMatch(/ \/models\/ \/comfyui\/models\/$/);
    expect(read('builder/fetch_model_slot.sh')).toContain('dest=${SLOT_DEST:-/models}');
  });
});
