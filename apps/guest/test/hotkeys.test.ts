import { Duplex, PassThrough } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HotkeyFilter, HotkeyScanner, parseHotkeyPrefix, type ScanPiece } from '../src/hotkeys.js';

const PREFIX = 0x1e;
const KEYS = new Set(['s', 'r', 'a', '?', '*']);

/** Feeds `chunks` and returns the data that passed and the keys found. */
function scan(chunks: Buffer[]): { data: Buffer; keys: string[] } {
  const scanner = new HotkeyScanner(PREFIX, (k) => KEYS.has(k));
  const pieces: ScanPiece[] = [];
  for (const c of chunks) pieces.push(...scanner.feed(c));
  pieces.push(...scanner.flush());
  const data = Buffer.concat(pieces.flatMap((p) => (p.type === 'data' ? [p.bytes] : [])));
  return { data, keys: pieces.flatMap((p) => (p.type === 'key' ? [p.key] : [])) };
}

function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let at = 0;
  for (const p of points) {
    out.push(bytes.subarray(at, p));
    at = p;
  }
  out.push(bytes.subarray(at));
  return out;
}

/** The reference: what a byte-at-a-time reading of the rules gives. */
function model(bytes: Buffer): { data: Buffer; keys: string[] } {
  const data: number[] = [];
  const keys: string[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] ?? 0;
    if (b !== PREFIX) {
      data.push(b);
      continue;
    }
    const next = bytes[i + 1];
    if (next === undefined) {
      data.push(PREFIX); // flushed
      continue;
    }
    i++;
    if (next === PREFIX) data.push(PREFIX);
    else if (next >= 0x20 && next < 0x7f && KEYS.has(String.fromCharCode(next)))
      keys.push(String.fromCharCode(next));
    else data.push(PREFIX, next);
  }
  return { data: Buffer.from(data), keys };
}

describe('hotkey prefix', () => {
  it('parses ^X notation and off', () => {
    expect(parseHotkeyPrefix('^^')).toBe(0x1e);
    expect(parseHotkeyPrefix('^o')).toBe(0x0f);
    expect(parseHotkeyPrefix('^\\')).toBe(0x1c);
    expect(parseHotkeyPrefix('off')).toBeNull();
  });
  it.each([
    '^C',
    '^D',
    '^[',
    '^]',
    '^M',
    '^J',
    '^I',
    '^H',
    '^?',
    '^U',
    '^W',
  ])('refuses %s (the shell, the login prompt or the viewer needs it)', (text) => {
    expect(() => parseHotkeyPrefix(text)).toThrow(/cannot be the hotkey prefix/);
  });
  it('refuses printable characters and longer strings', () => {
    expect(() => parseHotkeyPrefix('~')).toThrow(/control key/);
    expect(() => parseHotkeyPrefix('^^^^')).toThrow(/control key/);
  });
});

describe('HotkeyScanner', () => {
  it('takes PREFIX KEY out and passes everything else', () => {
    const r = scan([Buffer.from('ls\x1es -l\r')]);
    expect(r.keys).toEqual(['s']);
    expect(r.data.toString()).toBe('ls -l\r');
  });
  it('PREFIX PREFIX is one literal prefix; PREFIX with an unknown key passes both', () => {
    const r = scan([Buffer.from('a\x1e\x1eb\x1exc\x1e\x1bd')]);
    expect(r.keys).toEqual([]);
    expect(r.data).toEqual(Buffer.from('a\x1eb\x1exc\x1e\x1bd'));
  });
  it('a prefix split from its key across chunks still works', () => {
    const r = scan([Buffer.from('x\x1e'), Buffer.from('ry')]);
    expect(r.keys).toEqual(['r']);
    expect(r.data.toString()).toBe('xy');
  });
  it('hands data on as views of the input, without copies', () => {
    const input = Buffer.from('secret-password\r');
    const scanner = new HotkeyScanner(PREFIX, () => true);
    const [piece] = scanner.feed(input);
    expect(piece?.type).toBe('data');
    expect(piece?.type === 'data' && piece.bytes.buffer).toBe(input.buffer);
  });
  it('never finds a key in UTF-8 text or terminal replies (no C0 byte but ESC in them)', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme' }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (text, cuts) => {
          const clean = text.replace(/\p{Cc}/gu, '');
          const bytes = Buffer.from(`${clean}\x1b[24;80R\x1b[8;24;80t`);
          const r = scan(split(bytes, cuts));
          return r.keys.length === 0 && r.data.equals(bytes);
        },
      ),
    );
  });
  it('any chunking gives the same result as the byte-by-byte model', () => {
    const alphabet = fc.constantFrom(0x1e, 0x73, 0x72, 0x78, 0x0d, 0x1b, 0xc3, 0xa9, 0x3f, 0x2a);
    fc.assert(
      fc.property(
        fc.array(alphabet, { maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (raw, cuts) => {
          const bytes = Buffer.from(raw);
          const got = scan(split(bytes, cuts));
          const want = model(bytes);
          return (
            got.data.equals(want.data) && JSON.stringify(got.keys) === JSON.stringify(want.keys)
          );
        },
      ),
    );
  });
});

describe('HotkeyFilter', () => {
  it('passes input and output through and reports keys', async () => {
    const written: Buffer[] = [];
    // A console: what it "types" is pushed into its readable side, what we write is collected.
    const console = new Duplex({
      read() {},
      write(chunk, _encoding, callback) {
        written.push(chunk as Buffer);
        callback();
      },
    });
    const keys: string[] = [];
    const f = new HotkeyFilter(console, {
      prefix: PREFIX,
      isKey: (k) => KEYS.has(k),
      onKey: (k) => keys.push(k),
    });
    const seen: Buffer[] = [];
    f.on('data', (d: Buffer) => seen.push(d));
    console.push('hello\x1esworld');
    f.write('out');
    await new Promise((r) => setImmediate(r));
    expect(Buffer.concat(seen).toString()).toBe('helloworld');
    expect(keys).toEqual(['s']);
    expect(Buffer.concat(written).toString()).toBe('out');
    f.destroy();
    expect(console.destroyed).toBe(false); // the console belongs to the agent, not the filter
  });

  it('a lone prefix passes through after the timeout', async () => {
    const duplex = new PassThrough();
    const f = new HotkeyFilter(duplex, {
      prefix: PREFIX,
      isKey: () => true,
      onKey: () => {},
      timeoutMs: 20,
    });
    const seen: Buffer[] = [];
    f.on('data', (d: Buffer) => seen.push(d));
    // PassThrough: what we write to it is what it "reads".
    duplex.write(Buffer.from([0x61, PREFIX]));
    await new Promise((r) => setTimeout(r, 100));
    expect(Buffer.concat(seen)).toEqual(Buffer.from([0x61, PREFIX]));
    f.destroy();
  });

  it('ends when the console ends, leaving the console itself alone', async () => {
    const duplex = new PassThrough();
    const f = new HotkeyFilter(duplex, { prefix: null, isKey: () => false, onKey: () => {} });
    const closed = new Promise((r) => f.once('close', r));
    f.resume();
    duplex.end();
    await closed;
    expect(f.destroyed).toBe(true);
  });
});
