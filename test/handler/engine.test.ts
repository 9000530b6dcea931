import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { startEngine } from '../../handler/engine';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/lib/logger';

// The GPU check is Python in the image; a Node script stands in for it (one JSON line on stdout), run by
// the Node binary as the "python". Here SageAttention fails its check, as on a machine without it.
function failingSageCheck(): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'engine-')), 'check.js');
  writeFileSync(
    file,
    `console.log(JSON.stringify({ ok: true, gpu: 'NVIDIA H200', capability: '9.0', total_memory_bytes: 150109880320,
      torch: '2.9.1', modes: { sageattn: { ok: false, error: "import failed: No module named 'sageattention'" },
      sdpa: { ok: true, cosine: 0.99999 } } }));`,
  );
  return file;
}

async function engineLog(attentionMode: string): Promise<Record<string, unknown>[]> {
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', write: (l) => void lines.push(l) });
  const config = loadConfig({ ATTENTION_MODE: attentionMode, COMFYUI_PYTHON: process.execPath, GPU_CHECK_SCRIPT: failingSageCheck() });
  const engine = startEngine(config, logger, true);
  await engine.settled;
  expect(engine.current().attention).toBe('sdpa');
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('startEngine', () => {
  it('says loudly when SageAttention was wanted and failed its check', async () => {
    const [line] = await engineLog('auto');
    expect(line).toMatchObject({ level: 'ERROR', message: expect.stringMatching(/SageAttention failed the start-up check/) });
  });

  it('logs plain settings when ATTENTION_MODE=sdpa asked for no SageAttention', async () => {
    const [line] = await engineLog('sdpa');
    expect(line).toMatchObject({ level: 'INFO', message: 'engine settings', attention: 'sdpa', sageattn: { ok: false } });
  });
});
