import { describe, expect, it, beforeAll, afterAll } from '@jest/globals';
import { setupServer } from 'msw/node';
import { http, HttpResponse } from 'msw';

const server = setupServer(http.get('https://example.test/x', () => HttpResponse.json({ ok: 1 })));
beforeAll(() => server.listen());
afterAll(() => server.close());

describe('toolchain', () => {
  it('runs on node 22+ with msw intercepting global fetch', async () => {
    expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(22);
    const res = await fetch('https://example.test/x');
    expect(await res.json()).toEqual({ ok: 1 });
    expect(typeof WebSocket).toBe('function');
  });
});
