// A byte range of a file as an S3 request body that reuses a few buffers. An fs read stream
// allocates a fresh buffer for every read; at hundreds of MiB/s those dead buffers pile up until
// V8's next GC (which waits for ~64 MiB of them), and that garbage was most of an upload's RSS.
// The SDK sends a Readable body with `body.pipe(request)`: that path is served from buffers of a
// pool the whole upload shares, each taken back once the request has flushed it (its write
// callback) or has closed. Any other consumer reads through `_read`, which allocates as fs streams do.
import { open, type FileHandle } from 'node:fs/promises';
import { Readable, type Writable } from 'node:stream';

/** One read: large enough for few syscalls, small enough that a few in flight cost little. */
export const CHUNK_BYTES = 256 * 1024;
/** Chunks one body may have handed to its request and not yet seen flushed. */
export const CHUNKS_IN_FLIGHT = 4;

/** Buffers of CHUNK_BYTES shared by the bodies of one upload: at most (bodies in flight × CHUNKS_IN_FLIGHT) exist. */
export class BufferPool {
  private readonly free: Buffer[] = [];

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(CHUNK_BYTES);
  }

  give(buf: Buffer): void {
    this.free.push(buf);
  }
}

export class FileRangeBody extends Readable {
  private position: number;
  private readonly end: number;
  private handle: Promise<FileHandle> | undefined;

  constructor(
    private readonly path: string,
    start: number,
    length: number,
    private readonly pool: BufferPool,
  ) {
    super({ highWaterMark: CHUNK_BYTES });
    // fs reads abort the process on a fractional length: refuse it here, as an error.
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(length) || start < 0 || length < 0) {
      throw new RangeError(`bad file range ${start}+${length} of ${path}`);
    }
    this.position = start;
    this.end = start + length;
  }

  /** The SDK's way of sending a body: fed from the pool, CHUNKS_IN_FLIGHT at a time. */
  override pipe<T extends NodeJS.WritableStream>(dest: T): T {
    void this.pump(dest as unknown as Writable);
    return dest;
  }

  override _read(): void {
    const buf = Buffer.allocUnsafe(Math.max(1, Math.min(CHUNK_BYTES, this.end - this.position)));
    this.readInto(buf).then(
      (n) => this.push(n === 0 ? null : buf.subarray(0, n)),
      (error: Error) => this.destroy(error),
    );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.closeFile().then(() => callback(error), callback);
  }

  private async pump(dest: Writable): Promise<void> {
    const lent = new Set<Buffer>();
    let closed = false;
    let wake: (() => void) | undefined;
    const giveBack = (buf: Buffer): void => {
      if (lent.delete(buf)) this.pool.give(buf);
      wake?.();
    };
    // A closed request flushes nothing more: whatever it still holds is free again.
    const onClose = (): void => {
      closed = true;
      for (const buf of [...lent]) giveBack(buf);
    };
    dest.once('close', onClose);
    this.once('close', onClose);
    try {
      for (;;) {
        while (lent.size >= CHUNKS_IN_FLIGHT && !closed) await new Promise<void>((resolve) => (wake = resolve));
        if (closed) return;
        // Not lent until read: the read fills it from another thread, so it must not go back early.
        const buf = this.pool.take();
        let n: number;
        try {
          n = await this.readInto(buf);
        } catch (error) {
          this.pool.give(buf);
          throw error;
        }
        if (closed || n === 0) {
          this.pool.give(buf);
          if (!closed) dest.end();
          return;
        }
        lent.add(buf);
        dest.write(buf.subarray(0, n), () => giveBack(buf));
      }
    } catch (error) {
      dest.destroy(error as Error);
    } finally {
      dest.off('close', onClose);
      this.off('close', onClose);
      await this.closeFile().catch(() => {});
    }
  }

  /** Reads the next bytes of the range into `buf`; 0 once the range is done. */
  private async readInto(buf: Buffer): Promise<number> {
    const want = Math.min(buf.length, this.end - this.position);
    if (want <= 0) return 0;
    this.handle ??= open(this.path, 'r');
    const { bytesRead } = await (await this.handle).read(buf, 0, want, this.position);
    if (bytesRead === 0) throw new Error(`${this.path} ended before byte ${this.end}: was it changed during the upload?`);
    this.position += bytesRead;
    return bytesRead;
  }

  private async closeFile(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    if (handle) await (await handle).close();
  }
}
