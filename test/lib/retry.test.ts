import { describe, expect, it, jest } from '@jest/globals';
import { backoffDelay, retry } from '../../src/lib/retry';
import { delay } from '../../src/lib/delay';

const noSleep = async (): Promise<void> => {};

describe('retry', () => {
  it('retries until success and reports each failed attempt', async () => {
    let calls = 0;
    const failed: number[] = [];
    const result = await retry(
      async () => {
        calls++;
        if (calls < 3) throw new Error(`fail ${calls}`);
        return 'ok';
      },
      { attempts: 5, sleep: noSleep, onFailedAttempt: (c) => failed.push(c.attemptNumber) },
    );
    expect(result).toBe('ok');
    expect(calls).toBe(3);
    expect(failed).toEqual([1, 2]);
  });

  it('gives up after the last attempt with the last error', async () => {
    let calls = 0;
    await expect(
      retry(
        async () => {
          calls++;
          throw new Error(`fail ${calls}`);
        },
        { attempts: 3, sleep: noSleep },
      ),
    ).rejects.toThrow('fail 3');
    expect(calls).toBe(3);
  });

  it('stops at once when shouldRetry says no', async () => {
    let calls = 0;
    await expect(
      retry(
        async () => {
          calls++;
          throw new TypeError('bug');
        },
        { attempts: 5, sleep: noSleep, shouldRetry: ({ error }) => !(error instanceof TypeError) },
      ),
    ).rejects.toThrow('bug');
    expect(calls).toBe(1);
  });

  it('clamps delays to the total retry budget and stops when it is spent', async () => {
    let clock = 0;
    const sleeps: number[] = [];
    await expect(
      retry(
        async () => {
          throw new Error('down');
        },
        {
          attempts: 100,
          minDelayMs: 400,
          jitter: false,
          maxRetryTimeMs: 1000,
          now: () => clock,
          sleep: async (ms) => {
            sleeps.push(ms);
            clock += ms;
          },
        },
      ),
    ).rejects.toThrow('down');
    expect(sleeps).toEqual([400, 600]);
  });

  it('backs off exponentially within [50%, 100%] and caps at maxDelayMs', () => {
    expect(backoffDelay(1, { minDelayMs: 100, jitter: false })).toBe(100);
    expect(backoffDelay(4, { minDelayMs: 100, jitter: false })).toBe(800);
    expect(backoffDelay(30, { minDelayMs: 100, maxDelayMs: 5000, jitter: false })).toBe(5000);
    expect(backoffDelay(4, { minDelayMs: 100, random: () => 0 })).toBe(400);
    expect(backoffDelay(4, { minDelayMs: 100, random: () => 1 })).toBe(800);
  });

  it('an abort cuts the wait between attempts short', async () => {
    const controller = new AbortController();
    const fn = jest.fn(async () => {
      throw new Error('down');
    });
    const started = Date.now();
    const p = retry(fn, { attempts: 5, minDelayMs: 10_000, jitter: false, signal: controller.signal });
    setTimeout(() => controller.abort(new Error('shutdown')), 20);
    await expect(p).rejects.toThrow('shutdown');
    expect(Date.now() - started).toBeLessThan(5000);
    expect(fn).toHaveBeenCalledTimes(1);
  });
});

describe('delay', () => {
  it('rejects at once with an already aborted signal', async () => {
    await expect(delay(10_000, AbortSignal.abort(new Error('gone')))).rejects.toThrow('gone');
  });
});
