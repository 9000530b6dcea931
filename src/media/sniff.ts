// Media type from the first bytes of a file (magic numbers), never from a name or a header.

export interface SniffedType {
  kind: 'image' | 'video';
  mime: string;
  ext: string;
  /** Human name for messages ("a PNG image"). */
  label: string;
}

/** Enough bytes for every signature below (the EBML DocType can sit a few dozen bytes in). */
export const SNIFF_BYTES = 64;

const ascii = (b: Uint8Array, start: number, end: number): string => Buffer.from(b.subarray(start, end)).toString('latin1');
const startsWith = (b: Uint8Array, sig: number[], at = 0): boolean => sig.every((v, i) => b[at + i] === v);

/** QuickTime files from older tools start with one of these atoms instead of `ftyp`. */
const QUICKTIME_ATOMS = new Set(['moov', 'mdat', 'wide', 'free', 'skip', 'pnot']);

export function sniffMediaType(head: Uint8Array): SniffedType | undefined {
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) {
    return { kind: 'image', mime: 'image/png', ext: '.png', label: 'a PNG image' };
  }
  if (startsWith(head, [0xff, 0xd8, 0xff])) return { kind: 'image', mime: 'image/jpeg', ext: '.jpg', label: 'a JPEG image' };
  if (ascii(head, 0, 4) === 'RIFF' && ascii(head, 8, 12) === 'WEBP') {
    return { kind: 'image', mime: 'image/webp', ext: '.webp', label: 'a WebP image' };
  }
  if (ascii(head, 4, 8) === 'ftyp') {
    const brand = ascii(head, 8, 12);
    if (brand === 'qt  ') return { kind: 'video', mime: 'video/quicktime', ext: '.mov', label: 'a QuickTime video' };
    // HEIF/AVIF images share the ISO container: not videos ComfyUI's loaders accept.
    if (/^(heic|heix|hevc|mif1|msf1|avif|avis)$/.test(brand))
      return { kind: 'image', mime: 'image/heif', ext: '.heic', label: 'a HEIF/AVIF image (unsupported)' };
    return { kind: 'video', mime: 'video/mp4', ext: '.mp4', label: 'an MP4 video' };
  }
  if (QUICKTIME_ATOMS.has(ascii(head, 4, 8)) && head.length >= 8) {
    return { kind: 'video', mime: 'video/quicktime', ext: '.mov', label: 'a QuickTime video' };
  }
  if (startsWith(head, [0x1a, 0x45, 0xdf, 0xa3])) {
    const isWebm = ascii(head, 0, head.length).includes('webm');
    return isWebm
      ? { kind: 'video', mime: 'video/webm', ext: '.webm', label: 'a WebM video' }
      : { kind: 'video', mime: 'video/x-matroska', ext: '.mkv', label: 'a Matroska video' };
  }
  if (ascii(head, 0, 6) === 'GIF87a' || ascii(head, 0, 6) === 'GIF89a')
    return { kind: 'image', mime: 'image/gif', ext: '.gif', label: 'a GIF (unsupported)' };
  return undefined;
}

/** Is this sniffed type one the job accepts for `expect`? HEIF and GIF are recognised only to name them in errors. */
export function isAccepted(t: SniffedType, expect: 'image' | 'video'): boolean {
  if (t.kind !== expect) return false;
  return !['image/heif', 'image/gif'].includes(t.mime);
}
