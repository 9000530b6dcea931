import { describe, expect, it } from '@jest/globals';
import {
  describeValue,
  fits,
  keyPrefixMessage,
  nearest,
  numberMessage,
  unknownFieldMessage,
  type NumberRule,
} from '../../src/job/input-rules';

const rule = (over: Partial<NumberRule>): NumberRule => ({
  min: 0,
  max: 10,
  integer: true,
  scope: '',
  example: 5,
  omitted: 'the default 5',
  ...over,
});

describe('number rules', () => {
  it.each([
    [
      rule({ min: 256, max: 1280, multipleOf: 16 }),
      [
        [500, 496],
        [505, 512],
        [1, 256],
        [5000, 1280],
        [-3, 256],
      ],
    ],
    [
      rule({ min: 5, max: 321, fourNPlusOne: true }),
      [
        [80, 81],
        [82, 81],
        [83, 85],
        [0, 5],
        [400, 321],
      ],
    ],
    [
      rule({ min: 6, max: 160, fourNPlusOne: true }),
      [
        [0, 9],
        [1000, 157],
      ],
    ],
    [
      rule({ min: 1, max: 10, integer: false }),
      [
        [0.5, 1],
        [3.25, 3.25],
        [11, 10],
      ],
    ],
    [
      rule({ min: 0, max: 51 }),
      [
        [60, 51],
        [2.4, 2],
        [-1, 0],
      ],
    ],
  ] as const)('suggests the nearest valid value (%#)', (r, pairs) => {
    for (const [sent, expected] of pairs) {
      expect({ sent, got: nearest(sent, r) }).toEqual({ sent, got: expected });
      expect(fits(nearest(sent, r), r)).toBe(true);
    }
  });

  it('accepts exactly the values the rule describes', () => {
    const frames = rule({ min: 5, max: 321, fourNPlusOne: true });
    expect([5, 49, 81, 321].every((v) => fits(v, frames))).toBe(true);
    expect([1, 80, 325, 81.5, Number.NaN, Infinity].some((v) => fits(v, frames))).toBe(false);
  });

  it('says the bound, what was sent and what to send', () => {
    expect(numberMessage('7', rule({}))).toBe(
      'must be a whole number from 0 to 10, got the string "7" (send 7 as a number, not a string, or leave it out for the default 5)',
    );
    expect(numberMessage('70', rule({}))).toBe(
      'must be a whole number from 0 to 10, got the string "70" (send 10 as a number, not a string, or leave it out for the default 5)',
    );
    expect(numberMessage({}, rule({ scope: ' for variant "turbo"' }))).toBe(
      'must be a whole number from 0 to 10 for variant "turbo", got an object (send a number such as 5, or leave it out for the default 5)',
    );
    expect(numberMessage(2, rule({ min: 1, max: 1, integer: false }))).toBe('must be 1, got 2 (send 1, or leave it out for the default 5)');
  });

  it('describes sent values briefly, cutting long strings', () => {
    expect(describeValue('x'.repeat(100))).toBe(`the string "${'x'.repeat(40)}…"`);
    expect([null, [], true, 3].map(describeValue)).toEqual(['null', 'an array', 'true', '3']);
  });
});

describe('key prefixes', () => {
  it.each(['', 'dances/', 'a/b/c/', 'user-1_(x)!*.mp4/', 'no-slash'])('accepts %j', (prefix) => {
    expect(keyPrefixMessage(prefix)).toBeUndefined();
  });

  it.each([
    ['/etc/', 'must not start with "/" (send "etc/"'],
    ['a/./b/', 'must not contain "." or ".." segments (send "a/b/"'],
    ['x/..', 'must not contain "." or ".." segments (send "x"'],
    ['a//b/', 'must not contain empty segments ("//") (send "a/b/"'],
    ['é/', 'may contain only letters, digits and !_.*\'()/-, got "é" (send "-/"'],
    ['//', 'must not start with "/" (send "dances/"'],
  ])('refuses %j and suggests a clean one', (prefix, expected) => {
    expect(keyPrefixMessage(prefix)).toContain(expected);
  });
});

describe('unknown fields', () => {
  const known = ['width', 'height', 'steps', 'output'];
  it('suggests the field meant, or where it belongs, or lists the accepted ones', () => {
    expect(unknownFieldMessage('widht', known)).toBe('unknown field (did you mean "width"?)');
    expect(unknownFieldMessage('Height', known)).toBe('unknown field (did you mean "height"?)');
    expect(unknownFieldMessage('crf', known, { crf: 'under "output"' })).toBe('unknown field here (it belongs under "output")');
    expect(unknownFieldMessage('foo', known)).toBe('unknown field (accepted here: width, height, steps, output)');
    expect(unknownFieldMessage('toString', known)).toBe('unknown field (accepted here: width, height, steps, output)');
  });
});
