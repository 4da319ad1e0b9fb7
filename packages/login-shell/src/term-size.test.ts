import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SIZE_QUERY, SizeProbe, SizeReplyFilter } from './term-size.js';

const b = (s: string) => Buffer.from(s, 'latin1');

function feedSplit(filter: SizeReplyFilter, input: Buffer, cuts: number[]) {
  const points = [...new Set(cuts.map((c) => c % (input.length + 1)))].sort((x, y) => x - y);
  const pass: Buffer[] = [];
  const replies: unknown[] = [];
  let last = 0;
  for (const p of [...points, input.length]) {
    if (p <= last) continue;
    const r = filter.feed(input.subarray(last, p));
    pass.push(r.pass);
    replies.push(...r.replies);
    last = p;
  }
  pass.push(filter.release());
  return { pass: Buffer.concat(pass).toString('latin1'), replies };
}

describe('SizeReplyFilter', () => {
  it('takes out both answers and passes everything else through in order', () => {
    const f = new SizeReplyFilter();
    const r = f.feed(b('ab\x1b[8;40;132tcd\x1b[40;132Ref'));
    expect(r.pass.toString('latin1')).toBe('abcdef');
    expect(r.replies).toEqual([
      { kind: 'xterm', size: { cols: 132, rows: 40 } },
      { kind: 'cpr', size: { cols: 132, rows: 40 } },
    ]);
  });

  it('passes look-alikes through whole: arrow keys, other CSI, escape alone, absurd sizes', () => {
    for (const s of [
      '\x1b[A',
      '\x1b[1;5C',
      '\x1b[4;1;2t',
      '\x1b[1;2;3R',
      '\x1bx',
      '\x1b\x1b[B',
      '\x1b[0;80R',
      '\x1b[99999;1R',
    ]) {
      const f = new SizeReplyFilter();
      const r = f.feed(b(s));
      expect(r.replies).toEqual([]);
      expect(r.pass.toString('latin1') + f.release().toString('latin1')).toBe(s);
    }
  });

  it('gives the same result for any split of the input', () => {
    const piece = fc.constantFrom(
      '\x1b[8;24;80t',
      '\x1b[24;80R',
      '\x1b[A',
      '\x1b',
      '[',
      '1;2',
      'R',
      't',
      'x',
      'ls -l\r',
      '\x1b[1;5R',
    );
    fc.assert(
      fc.property(
        fc.array(piece, { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (pieces, cuts) => {
          const input = b(pieces.join(''));
          const whole = feedSplit(new SizeReplyFilter(), input, []);
          const split = feedSplit(new SizeReplyFilter(), input, cuts);
          expect(split).toEqual(whole);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('never loses or invents bytes: passed bytes plus answers rebuild the input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const f = new SizeReplyFilter();
        const r = f.feed(bytes);
        const passed = r.pass.length + f.release().length;
        expect(passed).toBeLessThanOrEqual(bytes.length);
        if (r.replies.length === 0) expect(passed).toBe(bytes.length);
      }),
    );
  });
});

describe('SizeProbe', () => {
  it('prefers the CSI 18 t answer and is done at the CPR answer', () => {
    const p = new SizeProbe();
    p.feed(b('\x1b[8;50;200t'));
    expect(p.done).toBe(false);
    expect(p.size).toEqual({ cols: 200, rows: 50 });
    p.feed(b('\x1b[48;199R'));
    expect(p.done).toBe(true);
    expect(p.size).toEqual({ cols: 200, rows: 50 });
  });

  it('falls back to the CPR answer (terminals that ignore CSI 18 t)', () => {
    const p = new SizeProbe();
    expect(p.feed(b('x\x1b[30;100Ry')).toString()).toBe('xy');
    expect(p.size).toEqual({ cols: 100, rows: 30 });
  });

  it('asks both questions and restores the cursor', () => {
    expect(SIZE_QUERY).toBe('\x1b[18t\x1b7\x1b[r\x1b[999;999H\x1b[6n\x1b8');
  });
});
