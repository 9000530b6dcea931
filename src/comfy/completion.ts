// Completion watching for one queued prompt. The websocket is a hint, /history the truth: the
// client polls /history, and this unit says when. A frame saying the prompt finished makes the next
// polls fast (settling, until the history entry appears); a socket drop or reconnect asks for a
// /queue check (a restarted ComfyUI forgets its queue); any frame at all counts as contact, since
// ComfyUI's HTTP may be slow while it works.
import type { Logger } from '../lib/logger';
import type { SocketMessage } from './messages';
import type { ComfySocket } from './socket';
import { Waker } from './waker';

/** Fast polls after a "finished" frame: ComfyUI writes the history entry just after it. */
const SETTLE_POLLS = 60;

export interface PollIntervals {
  /** While settling. */
  settleMs: number;
  /** While the socket is up (it will wake the poll). */
  idleMs: number;
  /** While the socket is down. */
  downMs: number;
}

export class CompletionWatch {
  private readonly waker = new Waker();
  private settlePolls = 0;
  private queueCheck = false;
  private lastContact = Date.now();
  private readonly unsubscribe: (() => void)[];

  constructor(
    private readonly socket: ComfySocket,
    private readonly promptId: string,
    log: Logger,
    /** Each frame about this prompt (progress). */
    onFrame?: (m: SocketMessage) => void,
  ) {
    this.unsubscribe = [
      socket.onMessage((m) => {
        this.lastContact = Date.now();
        if (!this.ours(m)) return;
        onFrame?.(m);
        if (this.finished(m)) {
          this.settlePolls = SETTLE_POLLS;
          this.waker.wake();
        }
      }),
      socket.onState((s) => {
        log.info(
          s === 'up' ? 'ComfyUI websocket reconnected; checking /history and /queue' : 'ComfyUI websocket dropped; polling /history',
        );
        this.queueCheck = true;
        this.waker.wake();
      }),
    ];
  }

  /** Waits until the next /history poll is due (or a frame makes it due now). */
  async nextPoll(intervals: PollIntervals, signal: AbortSignal): Promise<void> {
    const interval = this.settlePolls > 0 ? intervals.settleMs : this.socket.isUp ? intervals.idleMs : intervals.downMs;
    await this.waker.wait(interval, signal);
    if (this.settlePolls > 0) this.settlePolls -= 1;
  }

  /** ComfyUI answered over HTTP. */
  contact(): void {
    this.lastContact = Date.now();
  }

  /** How long since ComfyUI last answered or sent a frame. */
  silentForMs(): number {
    return Date.now() - this.lastContact;
  }

  /** A poll failed: check the queue next time. */
  requestQueueCheck(): void {
    this.queueCheck = true;
  }

  /** Whether /queue should be checked now (the request is consumed). */
  takeQueueCheck(): boolean {
    const due = this.queueCheck;
    this.queueCheck = false;
    return due;
  }

  close(): void {
    for (const off of this.unsubscribe) off();
  }

  private ours(m: SocketMessage): boolean {
    // the "current node" replay after a reconnect has no prompt_id; the socket is ours alone
    const id = (m.data as { prompt_id?: string }).prompt_id;
    return id === undefined ? m.type === 'executing' : id === this.promptId;
  }

  private finished(m: SocketMessage): boolean {
    return (
      (m.type === 'executing' && m.data.node === null && m.data.prompt_id === this.promptId) ||
      m.type === 'execution_success' ||
      m.type === 'execution_error' ||
      m.type === 'execution_interrupted'
    );
  }
}
