// Turns node and sampler-step events of one prompt into a percent (cached nodes count as done).
import type { SocketMessage } from './messages';

export interface ComfyProgress {
  percent: number;
  node?: string;
  nodeType?: string;
  step?: number;
  steps?: number;
}

export class ProgressTracker {
  private readonly done = new Set<string>();
  private current: string | undefined;
  private fraction = 0;
  private step: number | undefined;
  private steps: number | undefined;

  constructor(
    private readonly graph: Record<string, unknown>,
    private readonly emit: (p: ComfyProgress) => void,
  ) {}

  /** Feeds one socket message already known to belong to our prompt. */
  handle(m: SocketMessage): void {
    if (m.type === 'execution_cached') {
      for (const n of m.data.nodes) this.done.add(n);
    } else if (m.type === 'executing') {
      if (this.current !== undefined) this.done.add(this.current);
      if (m.data.node === null) return; // finished: the caller reports completion from history
      this.current = m.data.node;
      this.fraction = 0;
      this.step = undefined;
      this.steps = undefined;
    } else if (m.type === 'progress' && m.data.max > 0) {
      if (m.data.node) this.current = m.data.node;
      this.fraction = Math.min(1, m.data.value / m.data.max);
      this.step = m.data.value;
      this.steps = m.data.max;
    } else {
      return;
    }
    this.report();
  }

  private report(): void {
    const total = Math.max(1, Object.keys(this.graph).length);
    const completed = this.done.size + (this.current !== undefined && !this.done.has(this.current) ? this.fraction : 0);
    // 100 is reserved for "history says done"
    const percent = Math.min(99, Math.round((completed / total) * 1000) / 10);
    const node = this.current;
    const classType = node !== undefined ? (this.graph[node] as { class_type?: unknown } | undefined)?.class_type : undefined;
    this.emit({
      percent,
      ...(node !== undefined ? { node } : {}),
      ...(typeof classType === 'string' ? { nodeType: classType } : {}),
      ...(this.step !== undefined ? { step: this.step, steps: this.steps } : {}),
    });
  }
}
