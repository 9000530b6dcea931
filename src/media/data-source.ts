// data: URIs and bare base64 strings, decoded after checking the alphabet and the size
// (Buffer.from(…, 'base64') silently skips garbage, so it cannot be the validator).
import { writeFile } from 'node:fs/promises';
import { invalidInput, tooLarge, type InputField } from './errors';
import type { InputSource } from './input-source';

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** Decoded size of a (whitespace-free) base64 string. */
function decodedLength(b64: string): number {
  const padding = b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0;
  return Math.floor((b64.length * 3) / 4) - (padding && b64.length % 4 === 0 ? padding : 0);
}

function isDataUri(source: string): boolean {
  return /^data:/i.test(source);
}

export async function writeBase64(field: InputField, source: string, dest: string, maxBytes: number): Promise<number> {
  let payload = source;
  if (isDataUri(source)) {
    const comma = source.indexOf(',');
    const meta = comma < 0 ? '' : source.slice(5, comma);
    if (comma < 0 || !/;base64$/i.test(meta)) {
      throw invalidInput(field, 'only base64 data: URIs are accepted (data:<type>;base64,<data>)', { reason: 'data_uri' });
    }
    payload = source.slice(comma + 1);
  }
  const b64 = payload.replace(/\s+/g, '');
  if (b64.length === 0) throw invalidInput(field, 'the base64 data is empty', { reason: 'base64' });
  if (!BASE64.test(b64) || b64.length % 4 === 1) {
    throw invalidInput(field, 'is neither a URL (https://, http://, s3://) nor valid base64 / a data: URI', { reason: 'base64' });
  }
  const size = decodedLength(b64);
  if (size > maxBytes) throw tooLarge(field, maxBytes, size);
  const bytes = Buffer.from(b64, 'base64');
  await writeFile(dest, bytes);
  return bytes.byteLength;
}

/** data: URIs, and strings with no scheme at all (bare base64). */
export function dataSource(maxBytes: number): InputSource {
  return {
    forms: ['a data: URI'],
    retried: false,
    accepts: (scheme) => scheme === undefined || scheme === 'data',
    fetch: ({ field, source, dest }) => {
      if (source.length === 0) throw invalidInput(field, 'is empty', { reason: 'empty' });
      return writeBase64(field, source, dest, maxBytes);
    },
  };
}
