import { describe, expect, it } from '@jest/globals';
import { isAccepted, sniffMediaType } from '../../src/media/sniff';

const bytes = (...parts: (string | number[])[]): Uint8Array =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));

describe('sniffMediaType', () => {
  it.each([
    ['PNG', bytes([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'rest'), 'image/png', '.png'],
    ['JPEG', bytes([0xff, 0xd8, 0xff, 0xe0], 'JFIF'), 'image/jpeg', '.jpg'],
    ['WebP', bytes('RIFF', [1, 2, 3, 4], 'WEBPVP8 '), 'image/webp', '.webp'],
    ['MP4', bytes([0, 0, 0, 0x20], 'ftypisom', [0, 0, 2, 0]), 'video/mp4', '.mp4'],
    ['MOV (ftyp qt)', bytes([0, 0, 0, 0x14], 'ftypqt  '), 'video/quicktime', '.mov'],
    ['MOV (old, wide atom)', bytes([0, 0, 0, 8], 'wide'), 'video/quicktime', '.mov'],
    ['WebM', bytes([0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x86, 0x81, 1, 0x42, 0x82, 0x84], 'webm'), 'video/webm', '.webm'],
  ])('recognises %s', (_name, head, mime, ext) => {
    expect(sniffMediaType(head)).toMatchObject({ mime, ext });
  });

  it('does not trust names: text, HTML and short files are unknown', () => {
    expect(sniffMediaType(bytes('<!doctype html><html>'))).toBeUndefined();
    expect(sniffMediaType(bytes('{"error":"not found"}'))).toBeUndefined();
    expect(sniffMediaType(bytes([0xff, 0xd8]))).toBeUndefined();
    expect(sniffMediaType(new Uint8Array())).toBeUndefined();
  });

  it('recognises HEIF/GIF only to refuse them by name', () => {
    const heic = sniffMediaType(bytes([0, 0, 0, 0x18], 'ftypheic'));
    const gif = sniffMediaType(bytes('GIF89a', [1, 0]));
    expect(heic && isAccepted(heic, 'image')).toBe(false);
    expect(gif && isAccepted(gif, 'image')).toBe(false);
  });

  it('accepts a kind only for its own expectation', () => {
    const png = sniffMediaType(bytes([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(png && isAccepted(png, 'image')).toBe(true);
    expect(png && isAccepted(png, 'video')).toBe(false);
  });
});
