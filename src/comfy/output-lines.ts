// ComfyUI's stdout/stderr: split into lines, logged tagged, and kept (the last lines, and the lines that
// explain a failed custom-node import) so a boot failure can quote them.
import type { Readable } from 'node:stream';
import type { Logger } from '../lib/logger';

const NOTABLE = /IMPORT FAILED|Cannot import|ModuleNotFoundError|ImportError|No module named|Traceback|Error:|error:/;

export class OutputLines {
  private readonly last: string[] = [];
  private readonly notable: string[] = [];

  constructor(
    private readonly logger: Logger,
    private readonly keepLast = 30,
    private readonly keepNotable = 20,
  ) {}

  attach(stream: Readable | null, name: 'stdout' | 'stderr'): void {
    if (!stream) return;
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (partial + chunk).split(/\r?\n|\r/);
      partial = parts.pop() ?? '';
      for (const line of parts) this.add(line, name);
    });
    stream.on('end', () => {
      if (partial) this.add(partial, name);
      partial = '';
    });
  }

  /** The lines worth quoting in an error: import failures first, then the tail. */
  quote(): string {
    const tail = this.last.filter((l) => !this.notable.includes(l));
    return [...this.notable, ...(this.notable.length ? ['…'] : []), ...tail].join('\n');
  }

  private add(line: string, stream: 'stdout' | 'stderr'): void {
    if (line.trim() === '') return;
    // ComfyUI logs everything to stderr; the level is not reliable, so all lines are info
    this.logger.info(line, { source: 'comfyui', stream });
    this.last.push(line);
    if (this.last.length > this.keepLast) this.last.shift();
    if (NOTABLE.test(line)) {
      this.notable.push(line);
      if (this.notable.length > this.keepNotable) this.notable.shift();
    }
  }
}
