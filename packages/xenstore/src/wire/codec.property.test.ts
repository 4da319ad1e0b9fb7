import { isXenconsError } from '@xencons/errors';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { XsDecoder } from './decoder.js';
import { encodeMessage, type XsMessage, XsWriter } from './message.js';
import { XENSTORE_PAYLOAD_MAX, XS_HEADER_SIZE } from './types.js';

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const arbMessage: fc.Arbitrary<XsMessage> = fc.record({
  type: fc.oneof(fc.integer({ min: 0, max: 26 }), u32),
  reqId: u32,
  txId: u32,
  payload: fc.uint8Array({ maxLength: 300 }).chain((small) =>
    fc.oneof(
      { weight: 9, arbitrary: fc.constant(small) },
      {
        weight: 1,
        arbitrary: fc.uint8Array({ minLength: 4000, maxLength: XENSTORE_PAYLOAD_MAX }),
      },
    ),
  ),
});

function concat(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** Cuts `bytes` at the given (sorted, deduplicated) points. */
function cut(bytes: Uint8Array, points: number[]): Uint8Array[] {
  const sorted = [...new Set(points.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of sorted) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

function decodeChunks(chunks: Uint8Array[]): XsMessage[] {
  const d = new XsDecoder();
  const out: XsMessage[] = [];
  for (const c of chunks) d.feed(c, (m) => out.push(m));
  expect(d.buffered).toBe(0);
  return out;
}

describe('wire codec properties', () => {
  it('round trip: decode(encode(m)) = m', () => {
    fc.assert(
      fc.property(fc.array(arbMessage, { maxLength: 8 }), (messages) => {
        const bytes = concat(messages.map((m) => encodeMessage(m)));
        expect(decodeChunks([bytes])).toEqual(messages);
      }),
    );
  });

  it('XsWriter batches produce the same bytes as encodeMessage', () => {
    fc.assert(
      fc.property(fc.array(arbMessage, { maxLength: 8 }), (messages) => {
        const w = new XsWriter({ initialSize: 32 });
        for (const m of messages) w.message(m);
        expect(Buffer.from(w.flush())).toEqual(
          Buffer.from(concat(messages.map((m) => encodeMessage(m)))),
        );
        expect(w.length).toBe(0);
      }),
    );
  });

  it('chunk-split invariance: any split gives the same messages', () => {
    fc.assert(
      fc.property(
        fc.array(arbMessage, { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (messages, points) => {
          const bytes = concat(messages.map((m) => encodeMessage(m)));
          expect(decodeChunks(cut(bytes, points))).toEqual(messages);
        },
      ),
    );
  });

  it('arbitrary bytes never throw anything but ERR_XS_PROTOCOL, and nothing comes out after it', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 10 }),
        fc.integer({ min: 0, max: 64 }),
        (chunks, maxPayload) => {
          const d = new XsDecoder({ maxPayload });
          let failed = false;
          for (const c of chunks) {
            let emitted = 0;
            try {
              d.feed(c, () => {
                emitted++;
              });
            } catch (err) {
              expect(isXenconsError(err, 'ERR_XS_PROTOCOL')).toBe(true);
              if (failed) expect(emitted).toBe(0);
              failed = true;
            }
            if (failed) expect(d.error).not.toBeNull();
          }
        },
      ),
    );
  });

  it('an over-size header fails as soon as the 16 header bytes are in, before the payload', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: XENSTORE_PAYLOAD_MAX + 1, max: 0xffffffff }),
        u32,
        (len, reqId) => {
          const header = new Uint8Array(XS_HEADER_SIZE);
          const v = new DataView(header.buffer);
          v.setUint32(0, 2, true);
          v.setUint32(4, reqId, true);
          v.setUint32(12, len, true);
          const d = new XsDecoder({ peer: 'test peer' });
          d.feed(header.subarray(0, 15), () => {});
          expect(() => d.feed(header.subarray(15), () => {})).toThrow(
            /test peer.*over the 4096-byte limit/,
          );
          expect(d.buffered).toBe(0);
        },
      ),
    );
  });

  it('never emits a message after a valid prefix followed by a bad header', () => {
    fc.assert(
      fc.property(
        fc.array(arbMessage, { maxLength: 4 }),
        arbMessage,
        fc.array(fc.nat(), { maxLength: 8 }),
        (good, after, points) => {
          const bad = new Uint8Array(XS_HEADER_SIZE);
          new DataView(bad.buffer).setUint32(12, XENSTORE_PAYLOAD_MAX + 1, true);
          const bytes = concat([...good.map((m) => encodeMessage(m)), bad, encodeMessage(after)]);
          const d = new XsDecoder();
          const out: XsMessage[] = [];
          let error: unknown;
          for (const c of cut(bytes, points)) {
            try {
              d.feed(c, (m) => out.push(m));
            } catch (err) {
              error ??= err;
            }
          }
          expect(isXenconsError(error, 'ERR_XS_PROTOCOL')).toBe(true);
          expect(out).toEqual(good);
        },
      ),
    );
  });
});
