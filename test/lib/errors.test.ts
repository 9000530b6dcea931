import { describe, expect, it } from '@jest/globals';
import { WorkerError, formatError, isWorkerError, toWorkerError } from '../../src/lib/errors';

describe('WorkerError', () => {
  it('formats as CODE: message and keeps details and cause', () => {
    const cause = new Error('socket hang up');
    const e = new WorkerError('INPUT_FETCH_FAILED', 'pose_video: could not download', {
      cause,
      retryable: true,
      details: { field: 'pose_video' },
    });
    expect(formatError(e)).toBe('INPUT_FETCH_FAILED: pose_video: could not download');
    expect(e.cause).toBe(cause);
    expect(e.details).toEqual({ field: 'pose_video' });
    expect(isWorkerError(e, 'INPUT_FETCH_FAILED')).toBe(true);
    expect(isWorkerError(e, 'TIMEOUT')).toBe(false);
  });

  it('wraps foreign errors as INTERNAL (or the given code) and leaves ours alone', () => {
    const ours = new WorkerError('TIMEOUT', 'late');
    expect(toWorkerError(ours)).toBe(ours);
    expect(formatError(new RangeError('boom'))).toBe('INTERNAL: boom');
    expect(toWorkerError('text', 'UPLOAD_FAILED').code).toBe('UPLOAD_FAILED');
  });
});
