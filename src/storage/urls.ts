// How a stored object is handed to the user: a presigned GET, or a public base URL + key.
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';

/** SigV4 presigned URLs live at most 7 days; the SDK refuses 604 801. */
export const MAX_PRESIGN_EXPIRES_S = 604_800;

/** Percent-encodes each key segment but keeps the slashes. */
export function encodeKey(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}

export function publicObjectUrl(publicUrl: string, key: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/${encodeKey(key)}`;
}

export async function presignGet(client: S3Client, bucket: string, key: string, expiresS: number): Promise<string> {
  const expiresIn = Math.max(1, Math.min(MAX_PRESIGN_EXPIRES_S, Math.floor(expiresS)));
  return getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn });
}

/** `inline; filename="x.mp4"` with an RFC 6266 `filename*` when the name is not plain ASCII. */
export function contentDisposition(name: string, type: 'inline' | 'attachment' = 'inline'): string {
  const ascii = name.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '_');
  const plain = `${type}; filename="${ascii}"`;
  return ascii === name ? plain : `${plain}; filename*=UTF-8''${encodeURIComponent(name)}`;
}
