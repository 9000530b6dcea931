import { describe, expect, it } from '@jest/globals';
import { contentDisposition, encodeKey, publicObjectUrl } from '../../src/storage/urls';

describe('urls', () => {
  it('builds dispositions, with RFC 6266 filename* for non-ASCII names', () => {
    expect(contentDisposition('a.mp4')).toBe('inline; filename="a.mp4"');
    expect(contentDisposition('tänzer.mp4')).toBe(`inline; filename="t_nzer.mp4"; filename*=UTF-8''t%C3%A4nzer.mp4`);
  });

  it('joins public URLs with encoded key segments', () => {
    expect(encodeKey('a b/c#d.mp4')).toBe('a%20b/c%23d.mp4');
    expect(publicObjectUrl('https://cdn.example.com/x///', 'p/j/v.mp4')).toBe('https://cdn.example.com/x/p/j/v.mp4');
  });
});
