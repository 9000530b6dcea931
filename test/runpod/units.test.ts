import { afterEach, describe, expect, it, jest } from '@jest/globals';
import os from 'node:os';
import { loadConfig } from '../../src/config';
import { parseArgs } from '../../src/runpod/args';
import { fromReturned, serialiseResult } from '../../src/runpod/envelope';
import { pythonJsonDumps, wireBody } from '../../src/runpod/wire-json';
import { batchTakeUrl, jobUrl, stopUrl, takeUrl, withQuery } from '../../src/runpod/urls';
import { JobReporter } from '../../src/runpod/job-reporter';
import { localTestId } from '../../src/runpod/local-test';
import type { JobApi } from '../../src/runpod/job-api';
import { runWorker, selectMode } from '../../src/runpod';
import { captureLogger, FAST, localConfig } from './helpers';

const local = localConfig({ pingIntervalMs: 10_000, jobTimeoutMs: 5000 });

describe('URL templates', () => {
  it('replaces placeholders literally and keeps the query when appending', () => {
    expect(jobUrl('https://a/v2/ep/job-done/$RUNPOD_POD_ID/$ID?gpu=X', 'w1', 'j-1_a')).toBe('https://a/v2/ep/job-done/w1/j-1_a?gpu=X');
    // Ids are one encoded path segment; a worker id holding `$ID` is not filled with the job id.
    expect(jobUrl('https://a/v2/ep/job-done/$RUNPOD_POD_ID/$ID?gpu=X', 'w$ID', 'j$&1/../ü')).toBe(
      'https://a/v2/ep/job-done/w%24ID/j%24%261%2F..%2F%C3%BC?gpu=X',
    );
    expect(() => jobUrl('https://a/job-done/$RUNPOD_POD_ID/$ID', 'w1', '..')).toThrow('the job id ".." cannot be put into a RunPod URL');
    expect(takeUrl('https://a/v2/ep/job-take/$RUNPOD_POD_ID', 'w1')).toBe('https://a/v2/ep/job-take/w1');
    expect(withQuery('https://a/x?gpu=X', { isStream: 'false' })).toBe('https://a/x?gpu=X&isStream=false');
    expect(withQuery('https://a/x', { isStream: 'true' })).toBe('https://a/x?isStream=true');
    expect(batchTakeUrl('https://a/v2/ep/job-take/w1?gpu=X')).toBe('https://a/v2/ep/job-take-batch/w1?gpu=X');
    expect(stopUrl('https://a/v2/ep/job-take/w1?gpu=X')).toBe('https://a/v2/ep/job-stop/w1?gpu=X');
    expect(stopUrl('https://a/custom/take')).toBeUndefined();
  });
});

describe('result envelope', () => {
  it('maps returned values as rp-py run_job does', () => {
    expect(fromReturned(5)).toEqual({ output: 5 });
    expect(fromReturned(false)).toEqual({ output: false });
    expect(fromReturned([1])).toEqual({ output: [1] });
    expect(fromReturned({})).toEqual({});
    expect(fromReturned({ error: '', a: 1 })).toEqual({ output: { a: 1 } });
    expect(fromReturned({ refresh_worker: true, a: 1 })).toEqual({ output: { a: 1 }, stopPod: true });
  });

  it('keeps stopPod when it replaces an oversized result', () => {
    const { body } = serialiseResult({ output: 'x'.repeat(100), stopPod: true }, 50);
    expect(body.stopPod).toBe(true);
    expect(String(body.error)).toMatch(/^OUTPUT_TOO_LARGE/);
  });
});

describe('wire JSON', () => {
  // Expected texts printed by Python 3.11 json.dumps for the same value.
  const value = { a: [1, 'x, y: "z" \\\\'], é: '✓\u007f\n', e: {}, l: [], n: null, t: true };
  it("writes Python's json.dumps bytes: spaced separators, nothing inside strings touched", () => {
    expect(pythonJsonDumps(value)).toBe('{"a": [1, "x, y: \\"z\\" \\\\\\\\"], "é": "✓\u007f\\n", "e": {}, "l": [], "n": null, "t": true}');
    expect(pythonJsonDumps(value, true)).toBe(
      '{"a": [1, "x, y: \\"z\\" \\\\\\\\"], "\\u00e9": "\\u2713\\u007f\\n", "e": {}, "l": [], "n": null, "t": true}',
    );
  });

  it('keeps a missing output as null, as Python posts None', () => {
    expect(wireBody({ output: undefined })).toBe('{"output": null}');
    expect(wireBody({ status: 'IN_PROGRESS', output: undefined })).toBe('{"status": "IN_PROGRESS", "output": null}');
    expect(wireBody({})).toBe('{}');
  });
});

describe('flags and modes', () => {
  it('parses rp-py flags, both spellings, and rejects bad numbers', () => {
    expect(parseArgs(['--rp_serve_api', '--rp_api_port=9000', '--rp_api_host', '0.0.0.0', '--other'])).toMatchObject({
      serveApi: true,
      apiPort: 9000,
      apiHost: '0.0.0.0',
    });
    expect(parseArgs([])).toMatchObject({ serveApi: false, apiPort: 8000, apiHost: 'localhost', testInput: undefined });
    expect(() => parseArgs(['--rp_api_port', 'x'])).toThrow('--rp_api_port');
  });

  it('leaves the pod hostname unset when RunPod does not set it (runWorker falls back to the machine)', () => {
    expect(loadConfig({}).runpod.podHostname).toBeUndefined();
    expect(loadConfig({ RUNPOD_POD_HOSTNAME: ' pod-7 ' }).runpod.podHostname).toBe('pod-7');
  });

  it('picks api, then test input (flag or no take URL), then production', () => {
    const prod = { ...local, jobTakeUrl: 'https://a/job-take/$ID' };
    expect(selectMode(parseArgs(['--rp_serve_api', '--test_input', '{}']), prod)).toBe('api');
    expect(selectMode(parseArgs(['--test_input', '{}']), prod)).toBe('test_input');
    expect(selectMode(parseArgs([]), local)).toBe('test_input');
    expect(selectMode(parseArgs([]), prod)).toBe('production');
  });
});

describe('one-shot mode in process', () => {
  it('iterates a stream handler, prints the final body and passes extra job keys through', async () => {
    const printed: string[] = [];
    const { logger, lines } = captureLogger();
    const code = await runWorker({
      config: local,
      logger,
      argv: ['--test_input', '{"id":"t9","input":{"k":1},"extra":"kept"}'],
      handleSignals: false,
      timing: FAST,
      returnAggregateStream: true,
      print: (t) => printed.push(t),
      handler: async function* (job) {
        yield job.extra;
        yield (job.input as { k: number }).k;
      },
    });
    expect(code).toBe(0);
    expect(JSON.parse(printed.join(''))).toEqual({ output: ['kept', 1] });
    expect(lines.filter((l) => l.message === 'stream chunk').map((l) => l.chunk)).toEqual(['kept', 1]);
  });

  it('gives each run without an id its own local_test-<time>-<random> id', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const code = await runWorker({
        config: local,
        logger: captureLogger().logger,
        argv: ['--test_input', '{"input":{}}'],
        handleSignals: false,
        print: () => {},
        handler: async (job) => ids.push(job.id),
        onReady: () => ids.push('ready'),
      });
      expect(code).toBe(0);
    }
    expect(ids.filter((id) => id === 'ready')).toHaveLength(2);
    expect(ids[0]).toBe('ready'); // onReady runs before the job
    ids.splice(0, ids.length, ...ids.filter((id) => id !== 'ready'));
    expect(ids).toHaveLength(2);
    for (const id of ids) expect(id).toMatch(/^local_test-\d{8}T\d{6}Z-[0-9a-f]{6}$/);
    expect(ids[0]).not.toBe(ids[1]);
    expect(localTestId(new Date('2026-12-02T04:10:59.123Z'))).toMatch(/^local_test-20261202T041059Z-[0-9a-f]{6}$/);
  });

  it('fails (1) on a thrown error', async () => {
    const printed: string[] = [];
    const code = await runWorker({
      config: local,
      logger: captureLogger().logger,
      argv: ['--test_input', '{"input":{}}'],
      handleSignals: false,
      print: (t) => printed.push(t),
      handler: async () => {
        throw new Error('nope');
      },
    });
    expect(code).toBe(1);
    expect(JSON.parse(JSON.parse(printed.join('')).error)).toMatchObject({
      error_message: 'nope',
      hostname: os.hostname(),
      worker_id: 'local',
    });
  });
});

describe('progress throttle', () => {
  afterEach(() => {
    jest.useRealTimers();
  });

  it('sends at most one update per interval, the latest waiting one, and none once the result is queued', async () => {
    jest.useFakeTimers();
    const sent: { text: string; at: number }[] = [];
    const api = { postDone: async (_id: string, text: string) => void sent.push({ text, at: Date.now() }) } as unknown as JobApi;
    const timing = {
      progressIntervalMs: 1000,
      resultRetryBudgetMs: 1000,
      chunkRetryBudgetMs: 1000,
      retryMinDelayMs: 10,
      retryMaxDelayMs: 10,
    };
    const reporter = new JobReporter('j1', api, timing, captureLogger().logger);
    const t0 = Date.now();
    reporter.progress(1);
    await jest.advanceTimersByTimeAsync(0);
    reporter.progress(2);
    reporter.progress(3);
    await jest.advanceTimersByTimeAsync(999);
    expect(sent.map((s) => s.text)).toEqual(['{"status": "IN_PROGRESS", "output": 1}']);
    await jest.advanceTimersByTimeAsync(1);
    expect(sent.map((s) => [s.text, s.at - t0])).toEqual([
      ['{"status": "IN_PROGRESS", "output": 1}', 0],
      ['{"status": "IN_PROGRESS", "output": 3}', 1000],
    ]);
    reporter.progress(4);
    await reporter.final('{"output": "fin"}', false);
    await jest.advanceTimersByTimeAsync(5000);
    expect(sent.map((s) => s.text).slice(2)).toEqual(['{"output": "fin"}']);
  });
});
