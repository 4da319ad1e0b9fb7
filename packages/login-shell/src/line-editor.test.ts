import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type FeedResult,
  LineEditor,
  type LineEditorOptions,
  type LineEvent,
} from './line-editor.js';

interface Run {
  events: LineEvent[];
  lines: string[];
  echo: Buffer;
  rest: Buffer;
}

/** Feeds `chunks` to one editor until its event; returns what came out and the unread rest. */
function run(chunks: Uint8Array[], options: Partial<LineEditorOptions> = {}): Run {
  const editor = new LineEditor({ echo: true, maxBytes: 64, ...options });
  const events: LineEvent[] = [];
  const lines: string[] = [];
  const echo: Buffer[] = [];
  const rest: Buffer[] = [];
  for (const chunk of chunks) {
    if (editor.done) {
      rest.push(Buffer.from(chunk));
      continue;
    }
    const r = editor.feed(chunk);
    echo.push(r.echo);
    if (r.event) {
      events.push(r.event);
      if (r.event.type === 'line') lines.push(r.event.line.toString('utf8'));
      rest.push(Buffer.from(chunk.subarray(r.consumed)));
    }
  }
  // A line that ended on a chunk's last byte (CR) leaves the LF of a split CRLF to the next
  // reader (`awaitingLf` → `skipLeadingLf`); drop it here as that reader would, so the rest
  // does not depend on where the input was split.
  let restBytes = Buffer.concat(rest);
  const last = events.at(-1);
  if (last?.type === 'line' && last.awaitingLf && restBytes[0] === 0x0a)
    restBytes = restBytes.subarray(1);
  return { events, lines, echo: Buffer.concat(echo), rest: restBytes };
}

/** Every line in `input`, reading with a fresh editor per line as a getty does. */
function readAll(input: Uint8Array, split: number[], options: Partial<LineEditorOptions> = {}) {
  const chunks = splitAt(input, split);
  const out: LineEvent['type'][] = [];
  const lines: string[] = [];
  let queue: Buffer[] = chunks.map((c) => Buffer.from(c));
  let skipLeadingLf = false;
  while (queue.length > 0) {
    const editor: LineEditor = new LineEditor({
      echo: true,
      maxBytes: 64,
      ...options,
      skipLeadingLf,
    });
    skipLeadingLf = false;
    const next: Buffer[] = [];
    for (const chunk of queue) {
      if (editor.done) {
        next.push(chunk);
        continue;
      }
      const r: FeedResult = editor.feed(chunk);
      if (r.event) {
        out.push(r.event.type);
        if (r.event.type === 'line') {
          lines.push(r.event.line.toString('utf8'));
          skipLeadingLf = r.event.awaitingLf;
        }
        if (r.consumed < chunk.length) next.push(chunk.subarray(r.consumed));
      }
    }
    if (!editor.done) break;
    queue = next;
  }
  return { out, lines };
}

function splitAt(input: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (input.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let last = 0;
  for (const p of points) {
    if (p > last) chunks.push(input.subarray(last, p));
    last = Math.max(last, p);
  }
  if (last < input.length) chunks.push(input.subarray(last));
  return chunks;
}

const b = (s: string) => Buffer.from(s, 'utf8');
/** Printable text without control characters: what a person types. */
const printable = fc
  .string({ unit: 'grapheme', maxLength: 12 })
  .filter((s) => !/[\p{Cc}]/u.test(s));

describe('LineEditor', () => {
  it('returns typed text and echoes it followed by CRLF', () => {
    fc.assert(
      fc.property(printable, (text) => {
        fc.pre(Buffer.byteLength(text) <= 64);
        const r = run([b(`${text}\r`)]);
        expect(r.lines).toEqual([text]);
        expect(r.echo.toString('utf8')).toBe(`${text}\r\n`);
      }),
    );
  });

  it('gives the same events, echo and line for any split of the input', () => {
    const bytes = fc.uint8Array({ maxLength: 80 });
    fc.assert(
      fc.property(bytes, fc.array(fc.nat(), { maxLength: 10 }), (input, cuts) => {
        const whole = run([input]);
        const split = run(splitAt(input, cuts));
        expect(split.events.map((e) => e.type)).toEqual(whole.events.map((e) => e.type));
        expect(split.lines).toEqual(whole.lines);
        expect(split.echo.equals(whole.echo)).toBe(true);
        expect(split.rest.equals(whole.rest)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('never throws on arbitrary bytes, stays within the limit and keeps no control bytes', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.integer({ min: 1, max: 32 }),
        (input, max) => {
          const editor = new LineEditor({ echo: true, maxBytes: max });
          const r = editor.feed(input);
          expect(r.consumed).toBeLessThanOrEqual(input.length);
          if (r.event?.type === 'line') {
            expect(r.event.line.length).toBeLessThanOrEqual(max);
            expect(r.event.line.some((x) => x < 0x20 || x === 0x7f)).toBe(false);
            // Whatever was kept is valid UTF-8.
            expect(Buffer.from(r.event.line.toString('utf8'), 'utf8').equals(r.event.line)).toBe(
              true,
            );
          }
        },
      ),
    );
  });

  it('erases whole characters with Backspace and DEL, echoing as many columns as they took', () => {
    fc.assert(
      fc.property(printable, fc.nat({ max: 15 }), printable, fc.boolean(), (s, n, t, useDel) => {
        fc.pre(Buffer.byteLength(s) + Buffer.byteLength(t) <= 64);
        const key = useDel ? '\x7f' : '\b';
        const r = run([b(`${s}${key.repeat(n)}${t}\r`)]);
        const graphemes = [
          ...new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(s),
        ].map((g) => g.segment);
        // Erasing then retyping may merge graphemes at the seam; compare bytes kept instead.
        const kept = graphemes.slice(0, Math.max(0, graphemes.length - n)).join('');
        expect(r.lines).toEqual([kept + t]);
      }),
    );
  });

  it('erases a wide character with two columns of backspace-space-backspace', () => {
    const r = run([b('日\x7f\r')]);
    expect(r.lines).toEqual(['']);
    expect(r.echo.toString('utf8')).toBe('日\b \b\b \b\r\n');
  });

  it('erases a combining sequence as one character', () => {
    const r = run([b('ae\u0301\b\r')]);
    expect(r.lines).toEqual(['a']);
  });

  it('Ctrl-U erases the whole line, Ctrl-W the last word', () => {
    fc.assert(
      fc.property(printable, printable, (s, t) => {
        fc.pre(Buffer.byteLength(s) + Buffer.byteLength(t) <= 64);
        expect(run([b(`${s}\x15${t}\r`)]).lines).toEqual([t]);
      }),
    );
    expect(run([b('one two  \x17x\r')]).lines).toEqual(['one x']);
  });

  it('without echo, echoes nothing of the line and erases code points without decoding', () => {
    fc.assert(
      fc.property(printable, (s) => {
        fc.pre(Buffer.byteLength(s) <= 64 && s.length > 0);
        const r = run([b(`${s}\r`)], { echo: false });
        expect(r.lines).toEqual([s]);
        expect(r.echo.toString('latin1')).toBe('\r\n');
      }),
    );
    const r = run([b('pä\x7fa\r')], { echo: false });
    expect(r.lines).toEqual(['pa']);
    expect(r.echo.toString()).toBe('\r\n');
  });

  it('ends one line for each of CR, LF and CRLF, also when CRLF is split across reads', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.stringMatching(/^[a-z]{0,6}$/), fc.constantFrom('\r', '\n', '\r\n')), {
          maxLength: 6,
        }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (parts, cuts) => {
          const text = parts.map(([t, end]) => t + end).join('');
          const r = readAll(b(text), cuts);
          // A CR followed by an LF is one CRLF, whatever the parts were.
          expect(r.lines).toEqual(text.split(/\r\n|\r|\n/).slice(0, -1));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('treats Ctrl-C as interrupt and Ctrl-D on an empty line as end of input', () => {
    expect(run([b('abc\x03rest')]).events).toEqual([{ type: 'interrupt' }]);
    expect(run([b('abc\x03rest')]).rest.toString()).toBe('rest');
    expect(run([b('\x04')]).events).toEqual([{ type: 'eof' }]);
    expect(run([b('a\x04\r')]).lines).toEqual(['a']);
  });

  it('ignores arrow keys, function keys and Alt+key', () => {
    expect(run([b('a\x1b[A\x1b[1;5Cb\x1bOPc\x1bxd\x1b[15~e\r')]).lines).toEqual(['abcde']);
  });

  it('rings the bell instead of taking bytes past the limit, also for a split UTF-8 character', () => {
    const r = run([b('abcd\r')], { maxBytes: 3 });
    expect(r.lines).toEqual(['abc']);
    expect(r.echo.toString()).toBe('abc\x07\r\n');
    const u = run([b('ab€c\r')], { maxBytes: 4 });
    expect(u.lines).toEqual(['abc']);
  });

  it('drops broken UTF-8: stray continuation bytes, overlongs, surrogates', () => {
    expect(
      run([Buffer.from([0x61, 0x80, 0xc0, 0xaf, 0xed, 0xa0, 0x80, 0x62, 0x0d])]).lines,
    ).toEqual(['ab']);
    expect(run([Buffer.from([0xe2, 0x82, 0x0d])]).lines).toEqual(['']);
  });

  it('wipe() zeroes the line buffer', () => {
    const editor = new LineEditor({ echo: false, maxBytes: 16 });
    const r = editor.feed(b('secret\r'));
    expect(r.event?.type).toBe('line');
    const line = (r.event as { line: Buffer }).line;
    const backing = Buffer.from(line.buffer, line.byteOffset, 16);
    editor.wipe();
    expect(backing.every((x) => x === 0)).toBe(true);
  });
});
