// The request body that streams a file range through pooled buffers: exact bytes either way it is
// read, a few buffers reused however long the range, and failures that end the request.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { BufferPool, CHUNK_BYTES, CHUNKS_IN_FLIGHT, FileRangeBody } from '../../src/storage/file-body';

let dir: string;
let file: string;
let data: Buffer;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'file-body-'));
  file = path.join(dir, 'video.mp4');
  data = randomBytes(20 * CHUNK_BYTES + 777);
  await writeFile(file, data);
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

/** A request stand-in: copies what it gets, flushes each chunk a turn later, remembers which memory it saw. */
function sink() {
  const got: Buffer[] = [];
  const memory = new Set<ArrayBufferLike>();
  let pending = 0;
  let maxPending = 0;
  const dest = new Writable({
    highWaterMark: 16 * 1024,
    write(chunk: Buffer, _enc, cb) {
      got.push(Buffer.from(chunk));
      memory.add(chunk.buffer);
      pending++;
      maxPending = Math.max(maxPending, pending);
      setImmediate(() => {
        pending--;
        cb();
      });
    },
  });
  const done = new Promise<void>((resolve, reject) => {
    dest.on('finish', resolve);
    dest.on('error', reject);
  });
  return { dest, done, bytes: () => Buffer.concat(got), memory, maxPending: () => maxPending };
}

describe('FileRangeBody', () => {
  it('piped (as the SDK sends it): the exact range, through a few reused buffers', async () => {
    const start = 3 * CHUNK_BYTES + 5;
    const length = 15 * CHUNK_BYTES + 100;
    const s = sink();
    new FileRangeBody(file, start, length, new BufferPool()).pipe(s.dest);
    await s.done;
    expect(s.bytes().equals(data.subarray(start, start + length))).toBe(true);
    expect(s.memory.size).toBeLessThanOrEqual(CHUNKS_IN_FLIGHT + 1); // 16 chunks sent from ≤ 5 buffers
  });

  it('bodies of one upload share the pool: two in turn use no new memory', async () => {
    const pool = new BufferPool();
    const first = sink();
    new FileRangeBody(file, 0, 8 * CHUNK_BYTES, pool).pipe(first.dest);
    await first.done;
    const second = sink();
    new FileRangeBody(file, 8 * CHUNK_BYTES, 8 * CHUNK_BYTES, pool).pipe(second.dest);
    await second.done;
    expect([...second.memory].every((m) => first.memory.has(m))).toBe(true);
    expect(second.bytes().equals(data.subarray(8 * CHUNK_BYTES, 16 * CHUNK_BYTES))).toBe(true);
  });

  it('read as a plain stream: the exact range', async () => {
    const parts: Buffer[] = [];
    for await (const chunk of new FileRangeBody(file, 10, 2 * CHUNK_BYTES + 3, new BufferPool())) parts.push(chunk as Buffer);
    expect(Buffer.concat(parts).equals(data.subarray(10, 10 + 2 * CHUNK_BYTES + 3))).toBe(true);
  });

  it('an empty range ends the request at once', async () => {
    const s = sink();
    new FileRangeBody(file, 0, 0, new BufferPool()).pipe(s.dest);
    await s.done;
    expect(s.bytes().length).toBe(0);
  });

  it('a file shorter than its range fails the request instead of sending short', async () => {
    const short = path.join(dir, 'short.mp4');
    await writeFile(short, data);
    await truncate(short, CHUNK_BYTES);
    const s = sink();
    new FileRangeBody(short, 0, 3 * CHUNK_BYTES, new BufferPool()).pipe(s.dest);
    await expect(s.done).rejects.toThrow(/ended before byte .* changed during the upload/);
  });

  it('a request closed midway stops the reading and takes back the buffers it held', async () => {
    const pool = new BufferPool();
    let writes = 0;
    let stuck: ArrayBufferLike | undefined;
    const dest = new Writable({
      write(chunk: Buffer, _enc, cb) {
        if (++writes < 3) return void cb();
        stuck = chunk.buffer; // the request is aborted with this chunk unflushed: its callback never comes
        dest.destroy();
      },
    });
    new FileRangeBody(file, 0, data.length, pool).pipe(dest);
    await new Promise((resolve) => dest.on('close', resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toBe(3);
    const free = Array.from({ length: CHUNKS_IN_FLIGHT + 1 }, () => pool.take().buffer);
    expect(free).toContain(stuck);
  });
});
