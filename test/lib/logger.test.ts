import { describe, expect, it } from '@jest/globals';
import { createLogger } from '../../src/lib/logger';
import { redactText } from '../../src/lib/redact';

function capture(level: 'debug' | 'info' | 'warn' | 'error' = 'info') {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ level, write: (l) => lines.push(JSON.parse(l)), now: () => new Date(0) });
  return { logger, lines };
}

describe('logger', () => {
  it('writes one JSON object per line with level, message and child fields', () => {
    const { logger, lines } = capture();
    logger.child({ requestId: 'job-1' }).info('started', { stage: 'inputs' });
    expect(lines).toEqual([{ time: '1970-01-01T00:00:00.000Z', level: 'INFO', requestId: 'job-1', stage: 'inputs', message: 'started' }]);
  });

  it('drops lines below its level', () => {
    const { logger, lines } = capture('warn');
    logger.info('quiet');
    logger.error('loud');
    expect(lines.map((l) => l.message)).toEqual(['loud']);
  });

  it('never logs presigned signatures, URL credentials or secret-named fields', () => {
    const { logger, lines } = capture();
    const url =
      'https://acct.r2.cloudflarestorage.com/b/k.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA123%2F2026&X-Amz-Signature=deadbeef';
    logger.info(`uploaded ${url}`, {
      url,
      secretAccessKey: 'shh',
      headers: { Authorization: 'rp-key' },
      source: 'https://user:pass@example.com/a.png',
      err: new Error(`failed ${url}`),
    });
    const text = JSON.stringify(lines);
    for (const secret of ['deadbeef', 'AKIA123', 'shh', 'rp-key', 'user:pass']) expect(text).not.toContain(secret);
    expect(text).toContain('X-Amz-Algorithm=AWS4-HMAC-SHA256');
  });

  it('cuts very long messages in the middle', () => {
    const { logger, lines } = capture();
    logger.info(`start${'x'.repeat(10_000)}end`);
    const message = String(lines[0]?.message);
    expect(message.length).toBeLessThan(4200);
    expect(message.startsWith('start')).toBe(true);
    expect(message.endsWith('end')).toBe(true);
  });

  it('redactText leaves ordinary URLs alone', () => {
    expect(redactText('https://example.com/a.png?w=1')).toBe('https://example.com/a.png?w=1');
  });
});
