// The JSON text rp-py posts to RunPod: `json.dumps(...)` output, i.e. `", "` and `": "` separators
// (checked byte for byte against runpod 1.12.0 by test/runpod/python-parity.test.ts). RunPod parses
// it either way; sending the same bytes keeps the two workers indistinguishable on the wire.

/**
 * `JSON.stringify` with Python's default separators. `asciiOnly` = Python's default
 * `ensure_ascii=True` (non-ASCII as `\uXXXX`); rp-py posts bodies with `ensure_ascii=False`.
 * Throws as `JSON.stringify` does (cycles, BigInt).
 */
export function pythonJsonDumps(value: object, asciiOnly = false): string {
  const compact = JSON.stringify(value);
  // A character loop, not a regex: result strings can be megabytes long.
  let out = '';
  let last = 0;
  let inString = false;
  for (let i = 0; i < compact.length; i++) {
    const c = compact.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x2c || c === 0x3a) {
      out += `${compact.slice(last, i + 1)} `;
      last = i + 1;
    }
  }
  out += compact.slice(last);
  // JSON.stringify already escapes control characters as Python does; only DEL and non-ASCII remain.
  return asciiOnly ? out.replace(/[\u007f-\uffff]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`) : out;
}

/**
 * A body for a job-done / job-stream post. A handler that returns (or yields, or reports) nothing
 * gives `"output": null`, as Python's `None` does, instead of losing the key.
 */
export function wireBody(body: object): string {
  const withNull = 'output' in body && body.output === undefined ? { ...body, output: null } : body;
  return pythonJsonDumps(withNull);
}
