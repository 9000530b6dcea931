// Secrets must never reach a log line or an error message: presigned query strings,
// credentials in URLs, authorization headers, bucket keys.

const SENSITIVE_QUERY = /([?&](?:X-Amz-(?:Signature|Credential|Security-Token)|Signature|AWSAccessKeyId|token|key|sig)=)[^&\s"']*/gi;
const URL_USERINFO = /(\b[a-z][a-z0-9+.-]*:\/\/)[^/\s:@"']+(?::[^/\s@"']*)?@/gi;
const SENSITIVE_KEY = /secret|password|token|authorization|api[_-]?key|access[_-]?key|accessId|credential/i;

export const REDACTED = '[redacted]';

/** Removes credentials from free text (URLs inside messages included). */
export function redactText(text: string): string {
  return text.replace(SENSITIVE_QUERY, `$1${REDACTED}`).replace(URL_USERINFO, `$1${REDACTED}@`);
}

/** Deep copy with secret-looking keys replaced and every string scrubbed. */
export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactText(value);
  if (value === null || typeof value !== 'object' || depth > 8) return value;
  if (value instanceof Error) return redactError(value);
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SENSITIVE_KEY.test(k) && v !== undefined && v !== null && v !== '' ? REDACTED : redact(v, depth + 1);
  }
  return out;
}

function redactError(err: Error): Record<string, unknown> {
  const out: Record<string, unknown> = { name: err.name, message: redactText(err.message) };
  const code = (err as { code?: unknown }).code;
  if (code !== undefined) out.code = code;
  if (err.stack) out.stack = redactText(err.stack);
  if (err.cause !== undefined) out.cause = redact(err.cause, 1);
  return out;
}
