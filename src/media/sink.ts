// Streams chunks into a file, refusing to go past a byte cap while streaming (a missing or
// lying Content-Length cannot make the worker fill its disk).
import { open } from 'node:fs/promises';

export class TooLargeError extends Error {
  override readonly name = 'TooLargeError';
  constructor(readonly maxBytes: number) {
    super(`more than ${maxBytes} bytes`);
  }
}

/** Writes every chunk to `dest` (truncating it first) and returns the byte count; throws TooLargeError past `maxBytes`. */
export async function writeCapped(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  dest: string,
  maxBytes: number,
  onChunk?: () => void,
): Promise<number> {
  const file = await open(dest, 'w');
  let bytes = 0;
  try {
    for await (const chunk of chunks) {
      onChunk?.();
      bytes += chunk.byteLength;
      if (bytes > maxBytes) throw new TooLargeError(maxBytes);
      await file.write(chunk);
    }
    return bytes;
  } finally {
    await file.close();
  }
}
