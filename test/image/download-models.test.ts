// builder/download_models.py against loopback HTTP servers that behave like Hugging Face's
// resolve endpoint: a redirect to a second ("CDN") host that sends an ETag and honours Range and
// If-Range, dropped connections, 5xx, 404, wrong content and files that change upstream.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ROOT, run } from './helpers';

const SCRIPT = path.join(ROOT, 'builder/download_models.py');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Seen {
  host: 'hub' | 'cdn';
  url: string;
  range: string | undefined;
  ifRange: string | undefined;
  auth: string | undefined;
}

/** Per-path behaviour for the next requests; consumed in order, then `ok`. */
type Behaviour = 'ok' | '503' | '404' | 'drop-half' | 'drop-half-no-etag' | 'ignore-range';

class FakeHub {
  readonly seen: Seen[] = [];
  readonly blobs = new Map<string, Buffer>();
  readonly plans = new Map<string, Behaviour[]>();
  private hub = http.createServer((req, res) => this.onHub(req, res));
  private cdn = http.createServer((req, res) => this.onCdn(req, res));
  hubUrl = '';
  cdnUrl = '';

  async start(): Promise<void> {
    await Promise.all([listen(this.hub), listen(this.cdn)]);
    this.hubUrl = `http://127.0.0.1:${(this.hub.address() as AddressInfo).port}`;
    this.cdnUrl = `http://127.0.0.1:${(this.cdn.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    await Promise.all([close(this.hub), close(this.cdn)]);
  }

  reset(): void {
    this.seen.length = 0;
    this.blobs.clear();
    this.plans.clear();
  }

  private record(host: Seen['host'], req: http.IncomingMessage): void {
    this.seen.push({
      host,
      url: req.url ?? '',
      range: req.headers.range,
      ifRange: req.headers['if-range'] as string | undefined,
      auth: req.headers.authorization,
    });
  }

  // /<org>/<repo>/resolve/<rev>/<path> -> 302 to the CDN, like huggingface.co does for LFS files.
  private onHub(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.record('hub', req);
    const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(req.url ?? '');
    const key = m ? `${decodeURIComponent(m[1]!)}/${decodeURIComponent(m[3]!)}` : '';
    const plan = this.plans.get(key)?.[0];
    if (!m || !this.blobs.has(key) || plan === '404') {
      if (plan === '404') this.plans.get(key)!.shift();
      res.writeHead(404).end('Entry not found');
      return;
    }
    res.writeHead(302, { location: `${this.cdnUrl}/blob/${encodeURIComponent(key)}?signed=1` }).end();
  }

  private onCdn(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.record('cdn', req);
    const key = decodeURIComponent(/^\/blob\/([^?]+)/.exec(req.url ?? '')?.[1] ?? '');
    const blob = this.blobs.get(key);
    if (!blob) {
      res.writeHead(404).end();
      return;
    }
    const behaviour = this.plans.get(key)?.shift() ?? 'ok';
    if (behaviour === '503') {
      res.writeHead(503).end('busy');
      return;
    }
    const etag: { etag?: string } = behaviour === 'drop-half-no-etag' ? {} : { etag: `"${sha(blob)}"` };
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    // If-Range: the range only while the file is still the one with that ETag, else the whole file.
    const current = !req.headers['if-range'] || req.headers['if-range'] === etag.etag;
    if (range && current && behaviour !== 'ignore-range') {
      const start = Number(range[1]);
      if (start >= blob.length) {
        res.writeHead(416).end();
        return;
      }
      res.writeHead(206, {
        ...etag,
        'content-length': blob.length - start,
        'content-range': `bytes ${start}-${blob.length - 1}/${blob.length}`,
      });
      res.end(blob.subarray(start));
      return;
    }
    res.writeHead(200, { ...etag, 'content-length': blob.length });
    if (behaviour === 'drop-half' || behaviour === 'drop-half-no-etag') {
      // Promise the whole file, send half, then cut the connection.
      res.write(blob.subarray(0, blob.length >> 1), () => res.socket?.destroy());
      return;
    }
    res.end(blob);
  }
}

function listen(server: http.Server): Promise<void> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
}
function close(server: http.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
}

interface FileSpec {
  id: string;
  folder: string;
  path: string;
  repo: string;
  hfPath: string;
  data: Buffer;
  sha256?: string | null;
  bytes?: number | null;
  precisions?: string[];
  variants?: string[];
}

describe('download_models.py', () => {
  const hub = new FakeHub();
  let dir = '';
  let manifest = '';
  let dest = '';

  beforeAll(() => hub.start());
  afterAll(() => hub.stop());
  beforeEach(() => {
    hub.reset();
    dir = mkdtempSync(path.join(os.tmpdir(), 'sd-models-'));
    manifest = path.join(dir, 'models.json');
    dest = path.join(dir, 'models');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function writeManifest(files: FileSpec[]): void {
    for (const f of files) hub.blobs.set(`${f.repo}/${f.hfPath}`, f.data);
    const entries = files.map((f) => ({
      id: f.id,
      folder: f.folder,
      path: f.path,
      source: { hf_repo: f.repo, hf_path: f.hfPath },
      bytes: f.bytes === undefined ? f.data.length : f.bytes,
      sha256: f.sha256 === undefined ? sha(f.data) : f.sha256,
      precisions: f.precisions ?? ['fp8'],
      variants: f.variants ?? ['turbo'],
    }));
    writeFileSync(manifest, JSON.stringify({ files: entries }));
  }

  function download(extra: string[] = [], env: NodeJS.ProcessEnv = {}) {
    const { HF_TOKEN: _drop, ...base } = process.env;
    return run(
      'python3',
      [
        SCRIPT,
        '--manifest',
        manifest,
        '--dest',
        dest,
        '--base-url',
        hub.hubUrl,
        '--backoff',
        '0.01',
        '--retries',
        '3',
        '--timeout',
        '5',
        '--token-file',
        path.join(dir, 'no-token'),
        ...extra,
      ],
      { env: { ...base, ...env } },
    );
  }

  const diffusion = (data: Buffer): FileSpec => ({
    id: 'diffusion',
    folder: 'diffusion_models',
    path: 'WanVideo/SteadyDancer/model fp8.safetensors',
    repo: 'Kijai/WanVideo_comfy_fp8_scaled',
    hfPath: 'SteadyDancer/model fp8.safetensors',
    data,
  });
  const vae = (data: Buffer): FileSpec => ({
    id: 'vae',
    folder: 'vae',
    path: 'Wan2_1_VAE_bf16.safetensors',
    repo: 'Kijai/WanVideo_comfy',
    hfPath: 'Wan2_1_VAE_bf16.safetensors',
    data,
    sha256: null,
  });
  const onnx = (data: Buffer): FileSpec => ({
    id: 'yolo',
    folder: 'detection',
    path: 'onnx/yolov10m.onnx',
    repo: 'Wan-AI/Wan2.2-Animate-14B',
    hfPath: 'process_checkpoint/det/yolov10m.onnx',
    data,
  });

  it('downloads every selected file in parallel into <folder>/<path>, following the CDN redirect', async () => {
    const files = [diffusion(randomBytes(300_000)), vae(randomBytes(70_000)), onnx(randomBytes(5_000))];
    writeManifest(files);
    const r = await download(['--precision', 'fp8', '--jobs', '3']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const f of files) {
      expect(readFileSync(path.join(dest, f.folder, f.path)).equals(f.data)).toBe(true);
    }
    expect(
      hub.seen
        .filter((s) => s.host === 'hub')
        .map((s) => s.url)
        .sort(),
    ).toEqual([
      '/Kijai/WanVideo_comfy/resolve/main/Wan2_1_VAE_bf16.safetensors',
      '/Kijai/WanVideo_comfy_fp8_scaled/resolve/main/SteadyDancer/model%20fp8.safetensors',
      '/Wan-AI/Wan2.2-Animate-14B/resolve/main/process_checkpoint/det/yolov10m.onnx',
    ]);
    expect(r.stdout).toContain('WARNING: no sha256 in the manifest for vae');
    expect(r.stdout).toContain(`vae: UNVERIFIED: sha256 ${sha(files[1]!.data)}, 70000 bytes`);
    expect(readdirSync(path.join(dest, 'vae'))).toEqual(['Wan2_1_VAE_bf16.safetensors']); // no .part left
  });

  it('sends the token to the hub only, never across the redirect to the CDN, and never prints it', async () => {
    writeManifest([onnx(randomBytes(1000))]);
    const r = await download(['--precision', 'fp8'], { HF_TOKEN: 'hf_secretvalue' });
    expect(r.code).toBe(0);
    expect(hub.seen.find((s) => s.host === 'hub')?.auth).toBe('Bearer hf_secretvalue');
    expect(hub.seen.find((s) => s.host === 'cdn')?.auth).toBeUndefined();
    expect(r.stdout + r.stderr).not.toContain('hf_secretvalue');
  });

  it('reads the token from the build-secret file when HF_TOKEN is unset', async () => {
    writeManifest([onnx(randomBytes(1000))]);
    const tokenFile = path.join(dir, 'hf_token');
    writeFileSync(tokenFile, 'hf_fromsecret\n');
    const r = await download(['--precision', 'fp8', '--token-file', tokenFile]);
    expect(r.code).toBe(0);
    expect(hub.seen.find((s) => s.host === 'hub')?.auth).toBe('Bearer hf_fromsecret');
  });

  it('resumes a dropped download with a Range request from the bytes it has, If-Range on the ETag it got', async () => {
    const data = randomBytes(400_000);
    writeManifest([diffusion(data)]);
    hub.plans.set('Kijai/WanVideo_comfy_fp8_scaled/SteadyDancer/model fp8.safetensors', ['drop-half']);
    const r = await download(['--precision', 'fp8']);
    expect(r.code).toBe(0);
    const cdn = hub.seen.filter((s) => s.host === 'cdn');
    expect(cdn).toHaveLength(2);
    expect(cdn[0]!.range).toBeUndefined();
    expect(cdn[1]!.range).toMatch(/^bytes=[1-9]\d*-$/);
    expect(cdn[1]!.ifRange).toBe(`"${sha(data)}"`);
    expect(Number(/\d+/.exec(cdn[1]!.range!)![0])).toBeLessThan(data.length);
    expect(readFileSync(path.join(dest, 'diffusion_models/WanVideo/SteadyDancer/model fp8.safetensors')).equals(data)).toBe(true);
  });

  const fp8Key = 'Kijai/WanVideo_comfy_fp8_scaled/SteadyDancer/model fp8.safetensors';
  const fp8File = 'diffusion_models/WanVideo/SteadyDancer/model fp8.safetensors';

  it('downloads a file that changed upstream whole again instead of splicing it onto the old .part', async () => {
    // A moving revision ("main"), no sha256/size in the manifest: only the ETag tells the versions apart.
    const old = randomBytes(300_000);
    writeManifest([{ ...diffusion(old), sha256: null, bytes: null }]);
    hub.plans.set(fp8Key, ['drop-half']);
    expect((await download(['--precision', 'fp8', '--retries', '0'])).code).toBe(1);
    expect(existsSync(path.join(dest, `${fp8File}.part`))).toBe(true);
    const fresh = randomBytes(300_000);
    hub.blobs.set(fp8Key, fresh);
    hub.seen.length = 0;
    const r = await download(['--precision', 'fp8']);
    expect(r.code).toBe(0);
    const cdn = hub.seen.filter((s) => s.host === 'cdn');
    expect(cdn).toHaveLength(1);
    expect(cdn[0]!.range).toMatch(/^bytes=[1-9]\d*-$/);
    expect(cdn[0]!.ifRange).toBe(`"${sha(old)}"`); // the server saw the mismatch and sent all of it
    expect(readFileSync(path.join(dest, fp8File)).equals(fresh)).toBe(true);
  });

  it('discards a .part that another revision or manifest entry started, and one without its record', async () => {
    const data = randomBytes(200_000);
    writeManifest([diffusion(data)]);
    hub.plans.set(fp8Key, ['drop-half']);
    expect((await download(['--precision', 'fp8', '--retries', '0'])).code).toBe(1);
    const manifestJson = JSON.parse(readFileSync(manifest, 'utf8')) as { files: { source: { revision?: string } }[] };
    manifestJson.files[0]!.source.revision = 'b'.repeat(40);
    writeFileSync(manifest, JSON.stringify(manifestJson));
    hub.seen.length = 0;
    const r = await download(['--precision', 'fp8']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('diffusion: discarding');
    expect(hub.seen.filter((s) => s.host === 'cdn').map((s) => s.range)).toEqual([undefined]);
    expect(hub.seen.find((s) => s.host === 'hub')!.url).toContain(`/resolve/${'b'.repeat(40)}/`);
    expect(readFileSync(path.join(dest, fp8File)).equals(data)).toBe(true);

    rmSync(path.join(dest, fp8File));
    writeFileSync(path.join(dest, `${fp8File}.part`), data.subarray(0, 1000)); // no .part.json beside it
    hub.seen.length = 0;
    const again = await download(['--precision', 'fp8']);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('discarding 1000 bytes');
    expect(hub.seen.filter((s) => s.host === 'cdn').map((s) => s.range)).toEqual([undefined]);
    expect(readdirSync(path.dirname(path.join(dest, fp8File)))).toEqual(['model fp8.safetensors']);
  });

  it('starts over instead of resuming when the server sent no ETag to resume against', async () => {
    const data = randomBytes(200_000);
    writeManifest([diffusion(data)]);
    hub.plans.set(fp8Key, ['drop-half-no-etag']);
    const r = await download(['--precision', 'fp8']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('diffusion: discarding');
    expect(hub.seen.filter((s) => s.host === 'cdn').map((s) => s.range)).toEqual([undefined, undefined]);
    expect(readFileSync(path.join(dest, fp8File)).equals(data)).toBe(true);
  });

  it('downloads only the given ids (one image layer), and an empty selection passes with --allow-empty', async () => {
    const files = [diffusion(randomBytes(1000)), vae(randomBytes(1000)), { ...onnx(randomBytes(1000)), variants: ['quality'] }];
    writeManifest(files);
    const r = await download(['--precision', 'fp8', '--ids', 'vae,yolo', '--variants', 'turbo', '--allow-empty']);
    expect(r.code).toBe(0);
    expect(existsSync(path.join(dest, 'vae/Wan2_1_VAE_bf16.safetensors'))).toBe(true);
    expect(existsSync(path.join(dest, 'detection'))).toBe(false); // yolo: not a turbo file
    expect(existsSync(path.join(dest, 'diffusion_models'))).toBe(false);
    const empty = await download(['--precision', 'fp8', '--ids', 'yolo', '--variants', 'turbo', '--allow-empty']);
    expect(empty.code).toBe(0);
    expect(empty.stdout).toContain("yolo: not needed for precision 'fp8' and variants 'turbo'");
    const strict = await download(['--precision', 'fp8', '--ids', 'yolo', '--variants', 'turbo']);
    expect(strict.code).toBe(2);
    const typo = await download(['--precision', 'fp8', '--ids', 'yolo2', '--allow-empty']);
    expect(typo.code).toBe(2);
    expect(typo.stdout).toContain('models.json has no file with id yolo2');
  });

  it('starts over when the server ignores Range and answers 200', async () => {
    const data = randomBytes(200_000);
    writeManifest([diffusion(data)]);
    hub.plans.set('Kijai/WanVideo_comfy_fp8_scaled/SteadyDancer/model fp8.safetensors', ['drop-half', 'ignore-range']);
    const r = await download(['--precision', 'fp8']);
    expect(r.code).toBe(0);
    expect(readFileSync(path.join(dest, 'diffusion_models/WanVideo/SteadyDancer/model fp8.safetensors')).equals(data)).toBe(true);
  });

  it('retries a 503 with backoff, then succeeds', async () => {
    writeManifest([onnx(randomBytes(2000))]);
    hub.plans.set('Wan-AI/Wan2.2-Animate-14B/process_checkpoint/det/yolov10m.onnx', ['503', '503']);
    const r = await download(['--precision', 'fp8']);
    expect(r.code).toBe(0);
    expect(hub.seen.filter((s) => s.host === 'cdn')).toHaveLength(3);
    expect(r.stdout).toMatch(/HTTP 503 .*retrying in/);
  });

  it('fails loudly on a checksum mismatch after its retries and leaves no file behind', async () => {
    const f = onnx(randomBytes(3000));
    writeManifest([{ ...f, sha256: 'a'.repeat(64) }]);
    const r = await download(['--precision', 'fp8']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/ERROR: yolo: sha256 [0-9a-f]{64} does not match manifest a{64} \(attempt 4 of 4\)/);
    expect(r.stdout).toContain('1 of 1 model file(s) failed');
    expect(existsSync(path.join(dest, 'detection/onnx/yolov10m.onnx'))).toBe(false);
    expect(existsSync(path.join(dest, 'detection/onnx/yolov10m.onnx.part'))).toBe(false);
  });

  it('fails at once on a 404 with a hint naming the manifest fields, while other files still land', async () => {
    writeManifest([onnx(randomBytes(100)), vae(randomBytes(100))]);
    hub.plans.set('Wan-AI/Wan2.2-Animate-14B/process_checkpoint/det/yolov10m.onnx', ['404']);
    const r = await download(['--precision', 'fp8', '--jobs', '2']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/ERROR: yolo: HTTP 404 .*check source\.hf_repo \/ hf_path \/ revision .*\(attempt 1 of 4\)/);
    expect(hub.seen.filter((s) => s.url.includes('yolov10m'))).toHaveLength(1);
    expect(existsSync(path.join(dest, 'vae/Wan2_1_VAE_bf16.safetensors'))).toBe(true);
  });

  it('checks the byte count when no sha256 is known', async () => {
    writeManifest([{ ...vae(randomBytes(500)), bytes: 501 }]);
    const r = await download(['--precision', 'fp8', '--retries', '0']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('vae: got 500 bytes, manifest says 501');
  });

  it('keeps a verified file from an earlier run and replaces a corrupted one', async () => {
    const good = onnx(randomBytes(1000));
    writeManifest([good]);
    expect((await download(['--precision', 'fp8'])).code).toBe(0);
    hub.seen.length = 0;
    expect((await download(['--precision', 'fp8'])).code).toBe(0);
    expect(hub.seen).toHaveLength(0);
    writeFileSync(path.join(dest, 'detection/onnx/yolov10m.onnx'), 'corrupt');
    const r = await download(['--precision', 'fp8']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('existing file is wrong');
    expect(readFileSync(path.join(dest, 'detection/onnx/yolov10m.onnx')).equals(good.data)).toBe(true);
  });

  it('selects by precision and variants', async () => {
    const fp8 = { ...diffusion(Buffer.from('a')), variants: ['turbo', 'quality'] };
    const fp16 = {
      ...diffusion(Buffer.from('b')),
      id: 'diffusion16',
      path: 'x16.safetensors',
      hfPath: 'x16.safetensors',
      precisions: ['fp16'],
      variants: ['turbo', 'quality'],
    };
    const shared = { ...vae(Buffer.from('c')), precisions: ['fp8', 'fp16'], variants: ['turbo', 'quality', 'turbo-rcm'] };
    const rcm = { ...onnx(Buffer.from('d')), id: 'rcm', folder: 'loras', path: 'rcm.safetensors', variants: ['turbo-rcm'] };
    writeManifest([fp8, fp16, shared, rcm]);
    const list = async (...a: string[]) =>
      (await download(['--list', ...a])).stdout
        .trim()
        .split('\n')
        .map((l) => l.split('\t')[0]);
    expect(await list('--precision', 'fp8')).toEqual([
      'diffusion_models/WanVideo/SteadyDancer/model fp8.safetensors',
      'vae/Wan2_1_VAE_bf16.safetensors',
      'loras/rcm.safetensors',
    ]);
    expect(await list('--precision', 'fp16', '--variants', 'quality')).toEqual([
      'diffusion_models/x16.safetensors',
      'vae/Wan2_1_VAE_bf16.safetensors',
    ]);
    expect(await list('--precision', 'fp8', '--variants', 'turbo-rcm')).toEqual([
      'vae/Wan2_1_VAE_bf16.safetensors',
      'loras/rcm.safetensors',
    ]);
    const none = await download(['--precision', 'gguf']);
    expect(none.code).toBe(2);
    expect(none.stdout).toContain('no model file in');
  });

  it('refuses a manifest path that would escape the models folder', async () => {
    writeManifest([{ ...onnx(Buffer.from('x')), path: '../../etc/evil' }]);
    const r = await download(['--precision', 'fp8']);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain("yolo.path '../../etc/evil' must be a relative path");
    expect(hub.seen).toHaveLength(0);
  });
});
