import { describe, it, expect } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runGpuCheck } from '../../src/gpu';

// The check script is Python in the image; here a Node script stands in for it (same contract: argv,
// one JSON line on stdout, exit code), run by the Node binary as the "python".
function script(body: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'gpu-check-'));
  const file = path.join(dir, 'check.js');
  writeFileSync(file, body);
  return file;
}

describe('runGpuCheck', () => {
  it('passes the modes to check and parses the report', async () => {
    const file = script(`
      const modes = process.argv[process.argv.indexOf('--modes') + 1].split(',');
      console.log(JSON.stringify({ ok: true, gpu: 'NVIDIA H200', capability: '9.0', total_memory_bytes: 150109880320,
        torch: '2.9.1', modes: Object.fromEntries(modes.map((m) => [m, { ok: true, cosine: 0.999 }])) }));`);
    const r = await runGpuCheck({ python: process.execPath, script: file, timeoutMs: 10_000 });
    expect('report' in r && Object.keys(r.report.modes)).toEqual(['sageattn', 'sdpa']);
  });

  it('reports a crash with its last stderr line', async () => {
    const file = script(`console.error('ImportError: libcudart.so.12'); process.exit(3);`);
    const r = await runGpuCheck({ python: process.execPath, script: file, timeoutMs: 10_000 });
    expect('error' in r && r.error).toMatch(/exit 3: ImportError: libcudart/);
  });

  it('reports a python that cannot start, and kills a check that hangs', async () => {
    const missing = await runGpuCheck({ python: '/nonexistent/python3', script: 'x.py', timeoutMs: 10_000 });
    expect('error' in missing && missing.error).toMatch(/could not start/);
    const hang = script('setInterval(() => {}, 1000);');
    const r = await runGpuCheck({ python: process.execPath, script: hang, timeoutMs: 300 });
    expect('error' in r && r.error).toMatch(/no report within/);
  });
});
