// The outage retry policy on a fake clock: the budget counts time without progress, a success
// starts it afresh, unanswered attempts in a row end it early, refusals end it at once.
import { describe, expect, it } from '@jest/globals';
import { OutageGaveUp, retryThroughOutage, type OutageRetryOptions } from '../../src/storage/outage-retry';

const s503 = Object.assign(new Error('SlowDown'), { name: 'SlowDown', $metadata: { httpStatusCode: 503 } });
const s403 = Object.assign(new Error('AccessDenied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
const timedOut = Object.assign(new Error('socket idle'), { name: 'TimeoutError' });

function clock(over: Partial<OutageRetryOptions> = {}) {
  let now = 0;
  const sleeps: number[] = [];
  const opts: OutageRetryOptions = {
    budgetMs: 10_000,
    maxTimeoutsInARow: 3,
    minDelayMs: 1_000,
    maxDelayMs: 1_000,
    now: () => now,
    sleep: async (ms) => {
      sleeps.push(ms);
      now += ms;
    },
    random: () => 1,
    ...over,
  };
  return { opts, sleeps, advance: (ms: number) => (now += ms), now: () => now };
}

async function gaveUp(p: Promise<unknown>): Promise<OutageGaveUp> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof OutageGaveUp)) throw new Error(`expected OutageGaveUp, got ${String(err)}`);
  return err;
}

describe('retryThroughOutage', () => {
  it('retries 5xx until the budget of time without progress is spent, the last wait clamped to it', async () => {
    const c = clock({ budgetMs: 3_500 });
    const err = await gaveUp(retryThroughOutage(async () => Promise.reject(s503), c.opts));
    expect(err).toMatchObject({ reason: 'budget', attempts: 5, failingForMs: 3_500, last: s503 });
    expect(c.sleeps).toEqual([1_000, 1_000, 1_000, 500]);
  });

  it('a request that succeeds starts the budget afresh: a flapping S3 is outlasted', async () => {
    const c = clock({ budgetMs: 2_500 });
    let attempt = 0;
    const result = await retryThroughOutage(async (progress) => {
      attempt++;
      if (attempt === 3 || attempt === 6) progress(); // a part got through before the next failure
      if (attempt < 9) throw s503;
      return 'stored';
    }, c.opts);
    expect(result).toBe('stored');
    expect(c.now()).toBeGreaterThan(2 * 2_500); // failing far longer than the budget, but never 2.5 s without progress
  });

  it('gives up after maxTimeoutsInARow unanswered attempts; an answer in between resets the count', async () => {
    const c = clock({ budgetMs: 600_000 });
    const errors = [timedOut, timedOut, s503, timedOut, timedOut, timedOut];
    let n = 0;
    const err = await gaveUp(retryThroughOutage(async () => Promise.reject(errors[n++] ?? s503), c.opts));
    expect(err).toMatchObject({ reason: 'no_answer', attempts: 6 });
  });

  it('does not retry a refusal (403)', async () => {
    const c = clock();
    const err = await gaveUp(retryThroughOutage(async () => Promise.reject(s403), c.opts));
    expect(err).toMatchObject({ reason: 'not_retryable', attempts: 1, last: s403 });
    expect(c.sleeps).toEqual([]);
  });

  it('budget 0: one attempt', async () => {
    const c = clock({ budgetMs: 0 });
    expect(await gaveUp(retryThroughOutage(async () => Promise.reject(s503), c.opts))).toMatchObject({ reason: 'budget', attempts: 1 });
  });

  it('an abort ends the wait at once with its reason; no attempt starts after it', async () => {
    const controller = new AbortController();
    const reason = new Error('cancelled');
    let attempts = 0;
    const err = await retryThroughOutage(
      async () => {
        attempts++;
        throw s503;
      },
      {
        ...clock().opts,
        signal: controller.signal,
        sleep: (_ms, signal) =>
          new Promise((_resolve, reject) => {
            signal?.addEventListener('abort', () => reject(signal.reason));
            controller.abort(reason);
          }),
      },
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBe(reason);
    expect(attempts).toBe(1);
  });
});
