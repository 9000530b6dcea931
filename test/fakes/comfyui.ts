// A loopback fake of ComfyUI's HTTP + websocket API, faithful to ComfyUI 0.3.64 (the pinned release
// checked against a real server, see test/comfy/real-comfyui.test.ts):
// - a socket gets `status` first; prompt events go only to the socket whose id is the prompt's client_id;
//   events sent while that client has no socket are lost (no replay); a reconnect replaces the old socket;
// - ordering: execution_start, execution_cached, per node executing/progress/executed, execution_success
//   (or execution_error / execution_interrupted), THEN the history entry, then status, then executing null;
// - /history/{id} is {} until the prompt finished; failures are in status.messages;
// - VHS_VideoCombine reports `gifs`, core SaveVideo `images` + `animated: [true]`; files are written to disk;
// - /prompt 400 with nested error.type and node_errors; a 200 may carry node_errors;
// - node outputs are cached between prompts: an unchanged output node replays its previous file names.
import { randomUUID } from 'node:crypto';
import { mkdirSync, existsSync, writeFileSync, createReadStream, statSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import { acceptWebSocket, type FakeWebSocket } from './comfyui-ws';

export type Graph = Record<string, { class_type: string; inputs: Record<string, unknown> }>;

/** How the fake executes the next prompt. */
export interface FakeRunBehaviour {
  outcome: 'success' | 'error' | 'oom' | 'wait-for-interrupt';
  /** Awaited after the first sampler step, so a test can act mid-job (drop sockets, crash, cancel);
   * a function is called only when that step is reached (a stand-in that dies mid-sampler). */
  hold?: Promise<void> | (() => Promise<void>);
  /** Node that fails for outcome error/oom; default: the sampler, else the last node. */
  failingNode?: string;
}

export interface FakeComfyOptions {
  /** Node classes /object_info knows; prompts using others are rejected like 0.3.64 does. */
  nodeClasses?: readonly string[];
  /** Where outputs/inputs/temp files are written; a fresh temp dir when absent (the caller removes it). */
  dirs: { input: string; output: string; temp: string };
  port?: number;
  /** Printed-line hook (the stand-in process prints them like ComfyUI's log). */
  log?: (line: string) => void;
  /** Per-prompt behaviour chosen from the graph when queued (else the `behaviour` field). */
  behaviourFor?: (graph: Graph) => FakeRunBehaviour | undefined;
  /** Writes a real video for a VHS_VideoCombine / SaveVideo node (else a few placeholder bytes). */
  renderVideo?: (graph: Graph, nodeId: string, outPath: string) => Promise<void>;
}

export const DEFAULT_NODE_CLASSES = [
  'LoadImage',
  'VHS_LoadVideo',
  'VHS_VideoCombine',
  'SaveVideo',
  'CreateVideo',
  'EmptyImage',
  'SaveImage',
  'PreviewImage',
  'SaveAnimatedWEBP',
  'KSampler',
  'WanVideoSampler',
] as const;

const SAMPLERS = new Set(['KSampler', 'WanVideoSampler']);
const SAMPLER_STEPS = 4;

interface HistoryEntry {
  prompt: unknown[];
  outputs: Record<string, unknown>;
  status: { status_str: 'success' | 'error'; completed: boolean; messages: [string, unknown][] };
  meta: Record<string, unknown>;
}

interface Queued {
  number: number;
  id: string;
  graph: Graph;
  extra: { client_id?: string };
  outputs: string[];
  behaviour: FakeRunBehaviour;
}

export interface RecordedRequest {
  method: string;
  path: string;
  body: unknown;
}

export class FakeComfyUI {
  readonly requests: RecordedRequest[] = [];
  /** Behaviour of the next prompts; tests replace it. */
  behaviour: FakeRunBehaviour = { outcome: 'success' };
  /** A canned /prompt answer used once (then cleared): a 400 body, or node_errors on a 200. */
  nextPromptAnswer: { status: 400; body: unknown } | { status: 200; nodeErrors: Record<string, unknown> } | undefined;
  /** While true, websocket upgrades are refused (a flaky link); HTTP keeps working. */
  refuseWebSockets = false;
  /** Honour a client-supplied prompt_id (0.3.64 does; older builds always minted their own). */
  acceptClientPromptId = true;
  /** Faults of GET /history/{id} while the server lives: this many requests never answered (a server too
   * busy to reply), or every one answered with this status and body (a proxy's 502, another version's shape). */
  stallHistory = 0;
  historyAnswer: { status: number; body: unknown } | undefined;

  private readonly server: http.Server;
  private readonly sockets = new Map<string, FakeWebSocket>();
  private readonly tcp = new Set<Socket>();
  private readonly history = new Map<string, HistoryEntry>();
  private readonly queue: Queued[] = [];
  private running: Queued | undefined;
  private lastNode: string | null = null;
  private interruptRequested = false;
  private interruptWake: (() => void) | undefined;
  private number = 0;
  private readonly cache = new Map<string, { key: string; ui: unknown }>();
  private readonly counters = new Map<string, number>();
  private readonly classes: Set<string>;
  private pumping = false;
  private dead = false;
  private readonly listeners = new Set<(type: string, data: Record<string, unknown>) => void>();

  private constructor(private readonly opts: FakeComfyOptions) {
    this.classes = new Set(opts.nodeClasses ?? DEFAULT_NODE_CLASSES);
    for (const d of Object.values(opts.dirs)) mkdirSync(d, { recursive: true });
    this.server = http.createServer((req, res) => void this.route(req, res));
    this.server.on('connection', (s) => {
      this.tcp.add(s);
      s.on('close', () => this.tcp.delete(s));
    });
    this.server.on('upgrade', (req, socket) => this.upgrade(req, socket as Socket));
  }

  static async start(opts: FakeComfyOptions): Promise<FakeComfyUI> {
    const fake = new FakeComfyUI(opts);
    await new Promise<void>((resolve, reject) => {
      fake.server.once('error', reject);
      fake.server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
    });
    return fake;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Every event the fake emitted (to any socket or none), for assertions on ordering. */
  onEvent(listener: (type: string, data: Record<string, unknown>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves when an event of `type` (for `promptId` when given) is emitted. */
  waitForEvent(type: string, promptId?: string): Promise<Record<string, unknown>> {
    return new Promise((resolve) => {
      const off = this.onEvent((t, d) => {
        if (t === type && (promptId === undefined || d.prompt_id === promptId)) {
          off();
          resolve(d);
        }
      });
    });
  }

  historyOf(id: string): HistoryEntry | undefined {
    return this.history.get(id);
  }

  queuedIds(): string[] {
    return [...(this.running ? [this.running.id] : []), ...this.queue.map((q) => q.id)];
  }

  /** Drops every websocket without a close frame (the link died); the job keeps running. */
  dropSockets(): void {
    for (const ws of this.sockets.values()) ws.destroy();
    this.sockets.clear();
  }

  /** The process died: every connection is cut and nothing listens any more. */
  async crash(): Promise<void> {
    this.dead = true;
    this.interruptWake?.();
    for (const s of this.tcp) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  async close(): Promise<void> {
    if (this.dead) return;
    await this.crash();
  }

  // ---- websocket -------------------------------------------------------------------------------

  private upgrade(req: http.IncomingMessage, socket: Socket): void {
    const url = new URL(req.url ?? '/', 'http://x');
    if (!['/ws', '/api/ws'].includes(url.pathname) || this.refuseWebSockets) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n');
      return;
    }
    const ws = acceptWebSocket(req, socket);
    if (!ws) return;
    let sid = ws.query.get('clientId') ?? '';
    if (sid) this.sockets.get(sid)?.destroy();
    else sid = randomUUID().replaceAll('-', '');
    this.sockets.set(sid, ws);
    ws.onClose = () => {
      if (this.sockets.get(sid) === ws) this.sockets.delete(sid);
    };
    ws.onText = (text) => {
      const msg = JSON.parse(text) as { type?: string };
      if (msg.type === 'feature_flags') this.send('feature_flags', { supports_preview_metadata: false }, sid);
    };
    this.send('status', { status: this.queueInfo(), sid }, sid);
    if (this.running?.extra.client_id === sid && this.lastNode !== null) {
      // real ComfyUI re-sends the current node on reconnect, without prompt_id
      this.send('executing', { node: this.lastNode }, sid);
    }
  }

  private send(type: string, data: Record<string, unknown>, sid?: string): void {
    for (const l of this.listeners) l(type, data);
    const text = JSON.stringify({ type, data });
    if (sid === undefined) {
      for (const ws of this.sockets.values()) ws.sendText(text);
    } else {
      this.sockets.get(sid)?.sendText(text);
    }
  }

  private queueInfo(): { exec_info: { queue_remaining: number } } {
    return { exec_info: { queue_remaining: this.queue.length + (this.running ? 1 : 0) } };
  }

  // ---- HTTP --------------------------------------------------------------------------------------

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const p = url.pathname.startsWith('/api/') ? url.pathname.slice(4) : url.pathname;
    const raw = await readBody(req);
    const isJson = (req.headers['content-type'] ?? '').includes('json') || (raw.length > 0 && raw[0] === 0x7b);
    let body: unknown = undefined;
    if (isJson && raw.length > 0) {
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        body = undefined;
      }
    }
    this.requests.push({ method: req.method ?? 'GET', path: url.pathname + url.search, body });
    const json = (status: number, value: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(value));
    };
    const key = `${req.method} ${p}`;
    if (key === 'GET /system_stats') {
      json(200, {
        system: { os: 'posix', comfyui_version: '0.3.64', python_version: '3.11', pytorch_version: '2.9.1', argv: ['main.py'] },
        devices: [{ name: 'cpu', type: 'cpu', index: null, vram_total: 0, vram_free: 0 }],
      });
    } else if (req.method === 'GET' && p.startsWith('/object_info/')) {
      const cls = decodeURIComponent(p.slice('/object_info/'.length));
      json(200, this.classes.has(cls) ? { [cls]: { name: cls, input: {}, output: [] } } : {});
    } else if (key === 'GET /object_info') {
      json(200, Object.fromEntries([...this.classes].map((c) => [c, { name: c }])));
    } else if (key === 'POST /prompt') {
      this.postPrompt(body as Record<string, unknown> | undefined, json);
    } else if (key === 'GET /prompt') {
      json(200, this.queueInfo());
    } else if (req.method === 'GET' && p.startsWith('/history/') && this.stallHistory > 0) {
      this.stallHistory -= 1; // left unanswered; close() cuts it
    } else if (req.method === 'GET' && p.startsWith('/history/') && this.historyAnswer) {
      json(this.historyAnswer.status, this.historyAnswer.body);
    } else if (req.method === 'GET' && p.startsWith('/history/')) {
      const id = decodeURIComponent(p.slice('/history/'.length));
      const h = this.history.get(id);
      json(200, h ? { [id]: h } : {});
    } else if (key === 'GET /history') {
      const max = Number(url.searchParams.get('max_items') ?? this.history.size);
      json(200, Object.fromEntries([...this.history.entries()].slice(-max)));
    } else if (key === 'GET /queue') {
      const row = (q: Queued) => [q.number, q.id, q.graph, q.extra, q.outputs];
      json(200, { queue_running: this.running ? [row(this.running)] : [], queue_pending: this.queue.map(row) });
    } else if (key === 'POST /queue') {
      const b = (body ?? {}) as { clear?: boolean; delete?: string[] };
      if (b.clear) this.queue.length = 0;
      for (const id of b.delete ?? []) {
        const i = this.queue.findIndex((q) => q.id === id);
        if (i >= 0) this.queue.splice(i, 1);
      }
      res.writeHead(200).end();
    } else if (key === 'POST /interrupt') {
      const id = (body as { prompt_id?: string } | undefined)?.prompt_id;
      if (!id || this.running?.id === id) {
        this.interruptRequested = true;
        this.interruptWake?.();
      }
      res.writeHead(200).end();
    } else if (key === 'POST /free') {
      res.writeHead(200).end();
    } else if (key === 'POST /history') {
      const b = (body ?? {}) as { clear?: boolean; delete?: string[] };
      if (b.clear) this.history.clear();
      for (const id of b.delete ?? []) this.history.delete(id);
      res.writeHead(200).end();
    } else if (key === 'POST /upload/image') {
      this.upload(req, raw, json, res);
    } else if (key === 'GET /view') {
      this.view(url.searchParams, res);
    } else {
      res.writeHead(404).end('404: Not Found');
    }
  }

  private postPrompt(body: Record<string, unknown> | undefined, json: (s: number, v: unknown) => void): void {
    const number = this.number++;
    if (!body || !('prompt' in body)) {
      json(400, {
        error: { type: 'no_prompt', message: 'No prompt provided', details: 'No prompt provided', extra_info: {} },
        node_errors: {},
      });
      return;
    }
    const graph = body.prompt as Graph;
    const id = this.acceptClientPromptId && body.prompt_id !== undefined ? String(body.prompt_id) : randomUUID();
    const canned = this.nextPromptAnswer;
    this.nextPromptAnswer = undefined;
    if (canned?.status === 400) {
      json(400, canned.body);
      return;
    }
    for (const [nodeId, node] of Object.entries(graph)) {
      if (!this.classes.has(node.class_type)) {
        // 0.3.64's wording; newer builds answer error.type "missing_node_type" with extra_info.class_type
        json(400, {
          error: {
            type: 'invalid_prompt',
            message: `Cannot execute because node ${node.class_type} does not exist.`,
            details: `Node ID '#${nodeId}'`,
            extra_info: {},
          },
          node_errors: {},
        });
        return;
      }
    }
    const nodeErrors: Record<string, unknown> = {};
    for (const [nodeId, node] of Object.entries(graph)) {
      const image = node.inputs.image ?? node.inputs.video;
      if (
        (node.class_type === 'LoadImage' || node.class_type === 'VHS_LoadVideo') &&
        typeof image === 'string' &&
        !existsSync(path.join(this.opts.dirs.input, image))
      ) {
        nodeErrors[nodeId] = {
          errors: [
            {
              type: 'custom_validation_failed',
              message: 'Custom validation failed for node',
              details: `image - Invalid image file: ${image}`,
              extra_info: { input_name: 'image' },
            },
          ],
          dependent_outputs: this.outputNodes(graph),
          class_type: node.class_type,
        };
      }
    }
    const outputs = this.outputNodes(graph);
    if (outputs.length === 0) {
      json(400, { error: { type: 'prompt_no_outputs', message: 'Prompt has no outputs', details: '', extra_info: {} }, node_errors: {} });
      return;
    }
    if (Object.keys(nodeErrors).length > 0) {
      json(400, {
        error: { type: 'prompt_outputs_failed_validation', message: 'Prompt outputs failed validation', details: '', extra_info: {} },
        node_errors: nodeErrors,
      });
      return;
    }
    const extra = {
      ...((body.extra_data as object | undefined) ?? {}),
      ...(body.client_id !== undefined ? { client_id: String(body.client_id) } : {}),
    };
    this.queue.push({ number, id, graph, extra, outputs, behaviour: this.opts.behaviourFor?.(graph) ?? this.behaviour });
    this.send('status', { status: this.queueInfo() });
    json(200, { prompt_id: id, number, node_errors: canned?.status === 200 ? canned.nodeErrors : {} });
    void this.pump();
  }

  private outputNodes(graph: Graph): string[] {
    const outputClasses = new Set(['VHS_VideoCombine', 'SaveVideo', 'SaveImage', 'PreviewImage', 'SaveAnimatedWEBP']);
    return Object.entries(graph)
      .filter(([, n]) => outputClasses.has(n.class_type))
      .map(([id]) => id);
  }

  private upload(req: http.IncomingMessage, raw: Buffer, json: (s: number, v: unknown) => void, res: http.ServerResponse): void {
    const parts = parseMultipart(raw, req.headers['content-type'] ?? '');
    const image = parts.find((p) => p.name === 'image' && p.filename !== undefined);
    if (!image || !image.filename) {
      res.writeHead(400).end();
      return;
    }
    const field = (n: string) => parts.find((p) => p.name === n)?.data.toString('utf8');
    const type = field('type') ?? 'input';
    const subfolder = field('subfolder') ?? '';
    const overwrite = field('overwrite');
    const dir = path.join(this.dirFor(type), subfolder);
    mkdirSync(dir, { recursive: true });
    const ext = path.extname(image.filename);
    const stem = image.filename.slice(0, image.filename.length - ext.length);
    let name = image.filename;
    let duplicate = false;
    if (overwrite !== 'true' && overwrite !== '1') {
      // like ComfyUI: an existing file with the same bytes is reused, a different one renames the upload
      for (let i = 1; existsSync(path.join(dir, name)); i++) {
        if (readFileSync(path.join(dir, name)).equals(image.data)) {
          duplicate = true;
          break;
        }
        name = `${stem} (${i})${ext}`;
      }
    }
    if (!duplicate) writeFileSync(path.join(dir, name), image.data);
    json(200, { name, subfolder, type });
  }

  private view(q: URLSearchParams, res: http.ServerResponse): void {
    const filename = q.get('filename');
    if (!filename || filename.startsWith('/') || filename.includes('..')) {
      res.writeHead(400).end();
      return;
    }
    const base = this.dirFor(q.get('type') ?? 'output');
    const dir = path.resolve(base, q.get('subfolder') ?? '');
    if (!dir.startsWith(path.resolve(base))) {
      res.writeHead(403).end();
      return;
    }
    const file = path.join(dir, path.basename(filename));
    if (!existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, {
      'content-type': file.endsWith('.mp4') ? 'video/mp4' : 'application/octet-stream',
      'content-length': statSync(file).size,
    });
    createReadStream(file).pipe(res);
  }

  private dirFor(type: string): string {
    return type === 'temp' ? this.opts.dirs.temp : type === 'input' ? this.opts.dirs.input : this.opts.dirs.output;
  }

  // ---- execution -----------------------------------------------------------------------------------

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0 && !this.dead) {
        const item = this.queue.shift()!;
        this.running = item;
        this.send('status', { status: this.queueInfo() });
        await this.execute(item);
        this.running = undefined;
        this.lastNode = null;
      }
    } finally {
      this.pumping = false;
    }
  }

  private async execute(item: Queued): Promise<void> {
    const sid = item.extra.client_id;
    const messages: [string, unknown][] = [];
    const ts = () => Date.now();
    const emit = (type: string, data: Record<string, unknown>, record = false, broadcast = false) => {
      if (record) messages.push([type, data]);
      this.send(type, data, broadcast ? undefined : sid);
    };
    this.interruptRequested = false;
    emit('execution_start', { prompt_id: item.id, timestamp: ts() }, true);
    const order = Object.keys(item.graph);
    const cached = order.filter((id) => this.isCached(item.graph, id));
    emit('execution_cached', { nodes: cached, prompt_id: item.id, timestamp: ts() }, true);
    const uiOutputs: Record<string, unknown> = {};
    const executed: string[] = [...cached];
    for (const id of cached) {
      const hit = this.cache.get(id);
      if (hit?.ui) uiOutputs[id] = hit.ui;
    }
    const failing = item.behaviour.failingNode ?? order.find((id) => SAMPLERS.has(item.graph[id]!.class_type)) ?? order.at(-1)!;
    let failure: [string, Record<string, unknown>] | undefined;
    for (const id of order) {
      if (cached.includes(id)) continue;
      await tick();
      if (this.dead) return;
      if (this.interruptRequested) {
        failure = [
          'execution_interrupted',
          { prompt_id: item.id, node_id: id, node_type: item.graph[id]!.class_type, executed, timestamp: ts() },
        ];
        break;
      }
      const node = item.graph[id]!;
      this.lastNode = id;
      const state = (s: 'running' | 'finished') =>
        emit('progress_state', {
          prompt_id: item.id,
          nodes: {
            [id]: {
              value: s === 'running' ? 0 : 1,
              max: 1,
              state: s,
              node_id: id,
              prompt_id: item.id,
              display_node_id: id,
              parent_node_id: null,
              real_node_id: id,
            },
          },
        });
      state('running');
      emit('executing', { node: id, display_node: id, prompt_id: item.id });
      if (SAMPLERS.has(node.class_type)) {
        for (let step = 1; step <= SAMPLER_STEPS; step++) {
          emit('progress', { value: step, max: SAMPLER_STEPS, prompt_id: item.id, node: id });
          if (step === 1) {
            const hold = item.behaviour.hold;
            if (hold) await (typeof hold === 'function' ? hold() : hold);
            if (item.behaviour.outcome === 'wait-for-interrupt' && !this.interruptRequested) {
              await new Promise<void>((resolve) => (this.interruptWake = resolve));
            }
          }
          if (this.dead) return;
          await tick();
        }
      }
      if (id === failing && (item.behaviour.outcome === 'error' || item.behaviour.outcome === 'oom')) {
        const oom = item.behaviour.outcome === 'oom';
        const message = oom
          ? 'Allocation on device \nThis error means you ran out of memory on your GPU.\n\nTIPS: If the workflow worked before you might have accidentally set the batch_size to a large number.'
          : 'shape mismatch: value tensor of shape [1, 16] cannot be broadcast to indexing result of shape [2, 16]';
        failure = [
          'execution_error',
          {
            prompt_id: item.id,
            node_id: id,
            node_type: node.class_type,
            executed,
            exception_message: message,
            exception_type: oom ? 'torch.OutOfMemoryError' : 'RuntimeError',
            traceback: [
              '  File "/comfyui/execution.py", line 496, in execute\n',
              `${oom ? 'torch.OutOfMemoryError' : 'RuntimeError'}: ${message}\n`,
            ],
            current_inputs: {},
            current_outputs: {},
            timestamp: ts(),
          },
        ];
        break;
      }
      if (this.interruptRequested) {
        failure = ['execution_interrupted', { prompt_id: item.id, node_id: id, node_type: node.class_type, executed, timestamp: ts() }];
        break;
      }
      state('finished');
      const ui = await this.runOutputNode(item.graph, id);
      if (this.dead) return;
      this.cache.set(id, { key: this.cacheKey(item.graph, id), ui });
      if (ui) {
        uiOutputs[id] = ui;
        emit('executed', { node: id, display_node: id, output: ui, prompt_id: item.id });
      }
      executed.push(id);
    }
    if (failure) {
      // execution_interrupted is broadcast in ComfyUI; execution_error goes to the client only
      emit(failure[0], failure[1], true, failure[0] === 'execution_interrupted');
    } else {
      emit('execution_success', { prompt_id: item.id, timestamp: ts() }, true);
    }
    await tick(); // the real prompt worker writes history only after the event went out
    if (this.dead) return;
    this.history.set(item.id, {
      prompt: [item.number, item.id, item.graph, item.extra, item.outputs],
      outputs: uiOutputs,
      status: { status_str: failure ? 'error' : 'success', completed: !failure, messages },
      meta: Object.fromEntries(
        Object.keys(uiOutputs).map((id) => [id, { node_id: id, display_node: id, parent_node: null, real_node_id: id }]),
      ),
    });
    this.running = undefined;
    this.send('status', { status: this.queueInfo() });
    if (sid !== undefined) this.send('executing', { node: null, prompt_id: item.id }, sid);
  }

  private cacheKey(graph: Graph, id: string): string {
    const node = graph[id]!;
    const upstream = Object.values(node.inputs)
      .filter((v): v is [string, number] => Array.isArray(v) && typeof v[0] === 'string')
      .map(([src]) => (graph[src] ? this.cacheKey(graph, src) : src));
    return JSON.stringify([node.class_type, node.inputs, upstream]);
  }

  private isCached(graph: Graph, id: string): boolean {
    return this.cache.get(id)?.key === this.cacheKey(graph, id);
  }

  /** Writes the files an output node writes and returns its UI dict (as history shows it). */
  private async runOutputNode(graph: Graph, nodeId: string): Promise<Record<string, unknown> | undefined> {
    const node = graph[nodeId]!;
    const video = async (type: 'output' | 'temp', name: string): Promise<string> => {
      if (!this.opts.renderVideo) return write(type, name, FAKE_MP4);
      const full = write(type, name, Buffer.alloc(0));
      await this.opts.renderVideo(graph, nodeId, full);
      return full;
    };
    const prefix = String(node.inputs.filename_prefix ?? 'ComfyUI');
    const sub = path.dirname(prefix) === '.' ? '' : path.dirname(prefix);
    const stem = path.basename(prefix);
    const next = (dir: string) => {
      const k = `${dir}/${sub}/${stem}`;
      const n = (this.counters.get(k) ?? 0) + 1;
      this.counters.set(k, n);
      return String(n).padStart(5, '0');
    };
    const write = (type: 'output' | 'temp', name: string, data: Buffer) => {
      const dir = path.join(type === 'temp' ? this.opts.dirs.temp : this.opts.dirs.output, sub);
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, name), data);
      return path.join(dir, name);
    };
    switch (node.class_type) {
      case 'VHS_VideoCombine': {
        const type = node.inputs.save_output === false ? 'temp' : 'output';
        const n = next(type);
        const file = `${stem}_${n}.mp4`;
        const fullpath = await video(type, file);
        write(type, `${stem}_${n}.png`, Buffer.from('png'));
        return {
          gifs: [
            {
              filename: file,
              subfolder: sub,
              type,
              format: 'video/h264-mp4',
              frame_rate: Number(node.inputs.frame_rate ?? 16),
              workflow: `${stem}_${n}.png`,
              fullpath,
            },
          ],
        };
      }
      case 'SaveVideo': {
        const file = `${stem}_${next('output')}_.mp4`;
        await video('output', file);
        return { images: [{ filename: file, subfolder: sub, type: 'output' }], animated: [true] };
      }
      case 'SaveAnimatedWEBP': {
        const file = `${stem}_${next('output')}_.webp`;
        write('output', file, Buffer.from('RIFF'));
        return { images: [{ filename: file, subfolder: sub, type: 'output' }], animated: [true] };
      }
      case 'SaveImage':
      case 'PreviewImage': {
        const type = node.class_type === 'SaveImage' ? 'output' : 'temp';
        const file = `${stem}_${next(type)}_.png`;
        write(type, file, Buffer.from('png'));
        return { images: [{ filename: file, subfolder: sub, type }] };
      }
      default:
        return undefined;
    }
  }
}

/** A few bytes standing for an MP4 ("ftyp" box header), enough to compare what was read. */
export const FAKE_MP4 = Buffer.from('000000186674797069736f6d0000020069736f6d69736f32', 'hex');

function tick(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 1));
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

interface Part {
  name: string;
  filename?: string;
  data: Buffer;
}

function parseMultipart(raw: Buffer, contentType: string): Part[] {
  const m = /boundary=(?:"([^"]+)"|([^;]+))/.exec(contentType);
  if (!m) return [];
  const boundary = Buffer.from(`--${m[1] ?? m[2]}`);
  const parts: Part[] = [];
  let pos = raw.indexOf(boundary);
  while (pos >= 0) {
    const start = pos + boundary.length + 2; // CRLF
    const next = raw.indexOf(boundary, start);
    if (next < 0) break;
    const chunk = raw.subarray(start, next - 2);
    const headerEnd = chunk.indexOf('\r\n\r\n');
    const headers = chunk.subarray(0, headerEnd).toString('utf8');
    const name = /name="([^"]*)"/.exec(headers)?.[1] ?? '';
    const filename = /filename="([^"]*)"/.exec(headers)?.[1];
    parts.push({ name, ...(filename !== undefined ? { filename } : {}), data: Buffer.from(chunk.subarray(headerEnd + 4)) });
    pos = next;
  }
  return parts;
}
