// Image dimensions from the file's header, without decoding it (and without a dependency): enough
// to refuse a PNG that claims 100000×100000 pixels before ComfyUI tries to allocate it.
import type { FileHandle } from 'node:fs/promises';

export interface ImageSize {
  width: number;
  height: number;
}

/** Reads `length` bytes at `offset` (fewer at the end of the file). */
export type ReadAt = (offset: number, length: number) => Promise<Uint8Array>;

export function fileReader(file: FileHandle): ReadAt {
  return async (offset, length) => {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await file.read(buf, 0, length, offset);
    return buf.subarray(0, bytesRead);
  };
}

/** Thrown when the header cannot be read: the message says what is wrong with it. */
export class BadImageHeader extends Error {
  override readonly name = 'BadImageHeader';
}

const be16 = (b: Uint8Array, at: number): number => ((b[at] as number) << 8) | (b[at + 1] as number);
const be32 = (b: Uint8Array, at: number): number => be16(b, at) * 0x10000 + be16(b, at + 2);
const le16 = (b: Uint8Array, at: number): number => (b[at] as number) | ((b[at + 1] as number) << 8);
const le24 = (b: Uint8Array, at: number): number => le16(b, at) | ((b[at + 2] as number) << 16);
const ascii = (b: Uint8Array, start: number, end: number): string => Buffer.from(b.subarray(start, end)).toString('latin1');

/** PNG: the IHDR chunk must come first; width and height are its first two 32-bit fields. */
async function pngSize(read: ReadAt): Promise<ImageSize> {
  const b = await read(0, 24);
  if (b.length < 24 || ascii(b, 12, 16) !== 'IHDR') throw new BadImageHeader('its PNG header has no IHDR chunk');
  return { width: be32(b, 16), height: be32(b, 20) };
}

/** Start-of-frame markers (baseline, progressive, lossless, arithmetic): they carry the size. */
const JPEG_SOF = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);
/** Markers without a length field. */
const JPEG_STANDALONE = new Set([0x01, 0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8]);
/** A real header reaches its SOF within a few dozen segments (EXIF, ICC, thumbnails); garbage need not. */
const JPEG_MAX_SEGMENTS = 256;

/** JPEG: walks the segments (reading only their 4-byte headers) up to the first start-of-frame. */
async function jpegSize(read: ReadAt): Promise<ImageSize> {
  let at = 2; // after SOI
  for (let segment = 0; segment < JPEG_MAX_SEGMENTS; segment++) {
    const head = await read(at, 10);
    if (head.length < 2 || head[0] !== 0xff) break;
    const marker = head[1] as number;
    if (marker === 0xff) {
      at += 1; // fill byte
      continue;
    }
    if (JPEG_STANDALONE.has(marker)) {
      at += 2;
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) break; // end of image / start of scan before any frame header
    if (head.length < 4) break;
    if (JPEG_SOF.has(marker)) {
      if (head.length < 9) break;
      return { width: be16(head, 7), height: be16(head, 5) };
    }
    at += 2 + be16(head, 2);
  }
  throw new BadImageHeader('its JPEG header has no frame header (SOF) where one belongs');
}

/** WebP: the first chunk after "RIFF….WEBP" is VP8 (lossy), VP8L (lossless) or VP8X (extended). */
async function webpSize(read: ReadAt): Promise<ImageSize> {
  const b = await read(0, 30);
  const chunk = ascii(b, 12, 16);
  if (chunk === 'VP8 ' && b.length >= 30 && b[23] === 0x9d && b[24] === 0x01 && b[25] === 0x2a) {
    return { width: le16(b, 26) & 0x3fff, height: le16(b, 28) & 0x3fff };
  }
  if (chunk === 'VP8L' && b.length >= 25 && b[20] === 0x2f) {
    const bits = le16(b, 21) | (le16(b, 23) << 16);
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  if (chunk === 'VP8X' && b.length >= 30) return { width: le24(b, 24) + 1, height: le24(b, 27) + 1 };
  throw new BadImageHeader(`its WebP header has no readable VP8/VP8L/VP8X chunk (found "${chunk.replace(/[^\x20-\x7e]/g, '?')}")`);
}

const READERS: Readonly<Record<string, (read: ReadAt) => Promise<ImageSize>>> = {
  'image/png': pngSize,
  'image/jpeg': jpegSize,
  'image/webp': webpSize,
};

/** The size an image's header declares; throws BadImageHeader when it cannot be read or is empty. */
export async function readImageSize(read: ReadAt, mime: string): Promise<ImageSize> {
  const reader = READERS[mime];
  if (!reader) throw new BadImageHeader(`no header reader for ${mime}`);
  const size = await reader(read);
  if (size.width === 0 || size.height === 0) throw new BadImageHeader(`its header declares ${size.width}×${size.height} pixels`);
  return size;
}
