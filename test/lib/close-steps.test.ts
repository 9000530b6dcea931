import { describe, expect, it } from '@jest/globals';
import { closeInOrder } from '../../src/lib/close-steps';
import { createLogger } from '../../src/lib/logger';

function captureLogger() {
  const lines: Record<string, unknown>[] = [];
  return { lines, logger: createLogger({ write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) }) };
}

describe('closeInOrder', () => {
  it('runs every step in order, awaiting each, and reports none failed', async () => {
    const { logger, lines } = captureLogger();
    const ran: string[] = [];
    const failed = await closeInOrder(logger, [
      ['first', async () => void (await Promise.resolve(), ran.push('first'))],
      ['second', () => void ran.push('second')],
    ]);
    expect(ran).toEqual(['first', 'second']);
    expect(failed).toEqual([]);
    expect(lines.filter((l) => l.level === 'ERROR')).toEqual([]);
  });

  it('goes on after a step that throws or rejects, logging each under its name', async () => {
    const { logger, lines } = captureLogger();
    const ran: string[] = [];
    const failed = await closeInOrder(logger, [
      [
        'stop intake',
        () => {
          throw new Error('intake stuck');
        },
      ],
      ['drain', async () => Promise.reject(new Error('drain broke'))],
      ['stop the server', () => void ran.push('server')],
    ]);
    expect(ran).toEqual(['server']);
    expect(failed).toEqual(['stop intake', 'drain']);
    const errors = lines.filter((l) => l.level === 'ERROR');
    expect(errors.map((l) => l.step)).toEqual(['stop intake', 'drain']);
    expect(errors.map((l) => (l.error as { message: string }).message)).toEqual(['intake stuck', 'drain broke']);
  });
});
