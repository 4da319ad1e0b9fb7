import { isXenconsError } from '@xencons/errors';
import { describe, expect, it } from 'vitest';
import { XsDecoder } from './decoder.js';
import { type Fixture, loadFixtures } from './fixtures.js';
import { encodeMessage, type XsMessage, XsWriter } from './message.js';
import * as payloads from './payload.js';
import { parseAcl } from './perms.js';

const fixtures = loadFixtures();

/** Feeds `chunks` and returns what came out, plus the error the stream ended with. */
function run(chunks: Uint8Array[]): { messages: XsMessage[]; error: unknown } {
  const decoder = new XsDecoder({ peer: 'fixture' });
  const messages: XsMessage[] = [];
  try {
    for (const c of chunks) decoder.feed(c, (m) => messages.push(m));
  } catch (error) {
    // No message after an error: a further chunk emits nothing and throws again.
    const after: XsMessage[] = [];
    expect(() => decoder.feed(new Uint8Array(32), (m) => after.push(m))).toThrow();
    expect(after).toEqual([]);
    return { messages, error };
  }
  expect(decoder.buffered).toBe(0);
  return { messages, error: undefined };
}

function same(a: readonly XsMessage[], b: readonly XsMessage[]): boolean {
  return (
    a.length === b.length &&
    a.every((m, i) => {
      const o = b[i]!;
      return (
        m.type === o.type &&
        m.reqId === o.reqId &&
        m.txId === o.txId &&
        m.payload.constructor === Uint8Array &&
        Buffer.compare(m.payload, o.payload) === 0
      );
    })
  );
}

function check(f: Fixture, result: { messages: XsMessage[]; error: unknown }): void {
  // A cheap comparison first: the split-point test runs this thousands of times.
  if (!same(result.messages, f.messages)) expect(result.messages).toEqual(f.messages);
  if (f.error === undefined) expect(result.error).toBeUndefined();
  else expect(isXenconsError(result.error, f.error)).toBe(true);
}

function callParser(fn: string, payload: Uint8Array): unknown {
  if (fn === 'parseAcl') return parseAcl(payloads.decodeStrings(payload));
  if (fn === 'parseWriteRequest') {
    const r = payloads.parseWriteRequest(payload);
    return r && { path: r.path, valueHex: Buffer.from(r.value).toString('hex') };
  }
  if (fn === 'parseDirectoryPartReply') {
    const r = payloads.parseDirectoryPartReply(payload);
    return { gencnt: r.gencnt, data: String.fromCharCode(...r.data) };
  }
  if (fn === 'parseOkReply') return payloads.parseOkReply(payload) ?? null;
  const parser = (payloads as unknown as Record<string, (p: Uint8Array) => unknown>)[fn];
  if (parser === undefined) throw new Error(`no parser ${fn}`);
  return parser(payload);
}

describe('wire fixtures', () => {
  it('found the fixtures, each with a source line', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(30);
    for (const f of fixtures) expect(f.source).toMatch(/reference|xen-protocols|STYLE/);
  });

  describe.each(fixtures.map((f) => [f.name, f] as const))('%s', (_name, f) => {
    it('parses whole', () => check(f, run([f.bytes])));

    it('parses byte by byte', () => {
      check(f, run(Array.from(f.bytes, (b) => Uint8Array.of(b))));
    });

    it('parses split at every point', () => {
      for (let i = 0; i <= f.bytes.length; i++) {
        check(f, run([f.bytes.subarray(0, i), f.bytes.subarray(i)]));
      }
    });

    if (f.error === undefined) {
      it('generates the same bytes (encodeMessage and XsWriter)', () => {
        const parts = f.messages.map((m) => encodeMessage(m));
        const joined = Buffer.concat(parts);
        expect(Buffer.from(joined).equals(Buffer.from(f.bytes))).toBe(true);
        const writer = new XsWriter({ initialSize: 16 });
        for (const m of f.messages) writer.message(m);
        expect(Buffer.from(writer.flush()).equals(Buffer.from(f.bytes))).toBe(true);
      });

      it('mirrors: decode(encode(decode(bytes))) is stable', () => {
        const once = run([f.bytes]).messages;
        const again = run([Buffer.concat(once.map((m) => encodeMessage(m)))]).messages;
        expect(same(again, once)).toBe(true);
      });
    }

    const p = f.parse;
    if (p !== undefined)
      it(`payload parses with ${p.fn} as the reference says`, () => {
        const first = f.messages[0]!;
        expect(callParser(p.fn, first.payload)).toEqual(p.result);
      });
  });
});
