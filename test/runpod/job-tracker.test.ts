import { describe, expect, it } from '@jest/globals';
import { JobTracker } from '../../src/runpod/job-tracker';

/** A job that runs until released or aborted; it resolves with its abort reason, if any. */
function job() {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let reason: unknown;
  const work = async (signal: AbortSignal): Promise<void> => {
    await Promise.race([released, new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }))]);
    reason = signal.reason;
  };
  return { work, release, reason: () => reason };
}

describe('JobTracker', () => {
  it('tracks a job until it settles and reports the ids worth pinging for, without cancelled ones', async () => {
    const heard: string[][] = [];
    const tracker = new JobTracker((ids) => heard.push(ids));
    const a = job();
    const b = job();
    const doneA = tracker.track('a', a.work);
    void tracker.track('b', b.work);
    expect(tracker.size).toBe(2);
    const stop = new Error('stopped');
    const announced: string[] = [];
    tracker.cancel('a', stop, () => announced.push('a'));
    tracker.cancel('a', new Error('again'), () => announced.push('again'));
    expect(announced).toEqual(['a']);
    expect(tracker.isCancelled('a')).toBe(true);
    expect(tracker.has('a')).toBe(true); // its slot stays busy until it settles
    await doneA;
    expect(a.reason()).toBe(stop);
    expect(tracker.has('a')).toBe(false);
    expect(heard).toEqual([['a'], ['a', 'b'], ['b'], ['b']]);
    b.release();
  });

  it('frees a slot when a job settles', async () => {
    const tracker = new JobTracker();
    const a = job();
    void tracker.track('a', a.work);
    let free = false;
    const slot = tracker.waitForSlot(1, new AbortController().signal).then(() => (free = true));
    await Promise.resolve();
    expect(free).toBe(false);
    a.release();
    await slot;
    expect(tracker.size).toBe(0);
  });

  it('drains: a job that finishes in time is left alone, one still running after the grace is aborted', async () => {
    const tracker = new JobTracker();
    const quick = job();
    const slow = job();
    void tracker.track('quick', quick.work);
    void tracker.track('slow', slow.work);
    const aborted: string[] = [];
    const drained = tracker.drain(
      50,
      (id) => new Error(`late: ${id}`),
      (id) => aborted.push(id),
    );
    quick.release();
    await drained;
    expect(quick.reason()).toBeUndefined();
    expect((slow.reason() as Error).message).toBe('late: slow');
    expect(aborted).toEqual(['slow']);
    expect(tracker.size).toBe(0);
  });
});
