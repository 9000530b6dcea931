// One ComfyUI websocket for one client id, reconnected with backoff when it drops (a new socket with the
// same clientId replaces the old one server-side). Events sent while it is down are lost — ComfyUI does
// not replay — so callers must treat /history as the truth and use `onState('up')` to re-check it.
import type { Logger } from '../lib/logger';
import { backoffDelay } from '../lib/retry';
import { parseSocketMessage, type SocketMessage } from './messages';

export type SocketState = 'up' | 'down';

export interface ComfySocketOptions {
  baseUrl: string;
  clientId: string;
  logger: Logger;
  WebSocket?: typeof WebSocket;
  /** Reconnect backoff bounds. Defaults 250 ms … 5 s. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
}

export class ComfySocket {
  private ws: WebSocket | undefined;
  private closed = false;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private up = false;
  /** Settles a pending open(): its timer must not outlive close(). */
  private settleOpen: ((opened: boolean) => void) | undefined;
  private readonly messageListeners = new Set<(m: SocketMessage) => void>();
  private readonly stateListeners = new Set<(s: SocketState) => void>();
  private readonly WS: typeof WebSocket;

  constructor(private readonly opts: ComfySocketOptions) {
    this.WS = opts.WebSocket ?? globalThis.WebSocket;
  }

  get isUp(): boolean {
    return this.up;
  }

  onMessage(listener: (m: SocketMessage) => void): () => void {
    this.messageListeners.add(listener);
    return () => this.messageListeners.delete(listener);
  }

  onState(listener: (s: SocketState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /**
   * Connects and resolves once ComfyUI's first `status` frame arrived (the socket is registered then),
   * or resolves false after `timeoutMs` or on close() — the caller goes on polling while reconnects continue.
   */
  open(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const settle = (opened: boolean): void => {
        clearTimeout(timer);
        off();
        this.settleOpen = undefined;
        resolve(opened);
      };
      const timer = setTimeout(() => settle(false), timeoutMs);
      const off = this.onState((s) => {
        if (s === 'up') settle(true);
      });
      this.settleOpen = settle;
      this.connect();
    });
  }

  close(): void {
    this.closed = true;
    this.settleOpen?.(false);
    clearTimeout(this.reconnectTimer);
    this.messageListeners.clear();
    this.stateListeners.clear();
    try {
      this.ws?.close();
    } catch {
      // already closing
    }
  }

  private socketUrl(): string {
    const u = new URL('ws', this.opts.baseUrl.endsWith('/') ? this.opts.baseUrl : `${this.opts.baseUrl}/`);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    u.searchParams.set('clientId', this.opts.clientId);
    return u.toString();
  }

  private connect(): void {
    if (this.closed) return;
    let ws: WebSocket;
    try {
      ws = new this.WS(this.socketUrl());
    } catch (err) {
      this.opts.logger.warn('ComfyUI websocket could not be created', { error: err });
      this.scheduleReconnect();
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.addEventListener('message', (ev: MessageEvent) => {
      if (this.ws !== ws || typeof ev.data !== 'string') return; // binary frames: previews, ignored
      const msg = parseSocketMessage(ev.data);
      if (!msg) return;
      if (msg.type === 'status' && !this.up) {
        this.attempt = 0;
        this.setState('up');
      }
      for (const l of this.messageListeners) l(msg);
    });
    const onGone = (): void => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      if (this.up) this.setState('down');
      this.scheduleReconnect();
    };
    ws.addEventListener('close', onGone);
    ws.addEventListener('error', () => {
      try {
        ws.close();
      } catch {
        // ignore
      }
      onGone();
    });
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    this.attempt += 1;
    const wait = backoffDelay(this.attempt, { minDelayMs: this.opts.reconnectMinMs ?? 250, maxDelayMs: this.opts.reconnectMaxMs ?? 5000 });
    this.opts.logger.debug('ComfyUI websocket down; reconnecting', { attempt: this.attempt, delayMs: wait });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect();
    }, wait);
  }

  private setState(s: SocketState): void {
    this.up = s === 'up';
    for (const l of this.stateListeners) l(s);
  }
}
