import { isXenconsError } from '@xencons/errors';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { XENCONS_INTERFACE } from './console-layout.js';
import { PageView } from './page-view.js';
import { RingConsumer } from './ring-consumer.js';
import type { RingOptions } from './ring-endpoint.js';
import type { RingLayout } from './ring-layout.js';
import { RingProducer } from './ring-producer.js';
import { BACKENDS, pseudoRandomBytes } from './test-support.js';
import { XENSTORE_DOMAIN_INTERFACE } from './xenstore-layout.js';

// Hostile indices: the other side (or anyone with the page) writes arbitrary prod/cons pairs.
// Each operation either works within the ring's bounds, exactly as computed here from the
// indices, or throws ERR_RING_CORRUPT having changed nothing. The page is a window in the middle
// of a larger buffer filled with canary bytes, and the whole buffer is compared byte for byte.

const LAYOUTS: readonly RingLayout[] = [
  XENCONS_INTERFACE.out,
  XENCONS_INTERFACE.in,
  XENSTORE_DOMAIN_INTERFACE.req,
  XENSTORE_DOMAIN_INTERFACE.rsp,
];

type Op = 'write' | 'read' | 'peek' | 'skip' | 'free' | 'available';
const OPS: readonly Op[] = ['write', 'read', 'peek', 'skip', 'free', 'available'];

const u32 = fc.integer({ min: 0, max: 2 ** 32 - 1 });
/** An index pair: unrelated, or with `prod - cons` near the interesting edges. */
const indices = fc.oneof(
  fc.tuple(u32, u32),
  fc
    .tuple(u32, fc.integer({ min: -8, max: 2048 + 8 }))
    .map(([cons, delta]) => [(cons + delta) >>> 0, cons] as const),
  fc
    .tuple(u32, fc.integer({ min: 0, max: 8 }))
    .map(([cons, delta]) => [(cons - delta - 2 ** 31) >>> 0, cons] as const),
);

interface Case {
  layout: RingLayout;
  op: Op;
  prod: number;
  cons: number;
  length: number;
  seed: number;
}

const cases: fc.Arbitrary<Case> = fc
  .record({
    layout: fc.constantFrom(...LAYOUTS),
    op: fc.constantFrom(...OPS),
    pair: indices,
    length: fc.integer({ min: 0, max: 3000 }),
    seed: fc.integer(),
  })
  .map(({ pair: [prod, cons], ...rest }) => ({ ...rest, prod, cons }));

function hostileProperty(options: RingOptions) {
  return (c: Case) => {
    const { layout, op, prod, cons, length, seed } = c;
    const PAGE = 4096;
    const buffer = new ArrayBuffer(3 * PAGE);
    const all = new Uint8Array(buffer);
    all.set(pseudoRandomBytes(buffer.byteLength, seed));
    const page = new PageView(new Uint8Array(buffer, PAGE, PAGE));
    page.storeU32(layout.prodOffset, prod);
    page.storeU32(layout.consOffset, cons);
    const before = all.slice();
    const producer = new RingProducer(page, layout, options);
    const consumer = new RingConsumer(page, layout, options);
    const src = pseudoRandomBytes(length, ~seed);
    const dst = new Uint8Array(length).fill(0x5a);

    let result: number | undefined;
    let error: unknown;
    try {
      if (op === 'write') result = producer.write(src);
      else if (op === 'read') result = consumer.read(dst);
      else if (op === 'peek') result = consumer.peek(dst);
      else if (op === 'skip') result = consumer.skip(length);
      else if (op === 'free') result = producer.free();
      else result = consumer.available();
    } catch (err) {
      error = err;
    }

    const queued = (prod - cons) >>> 0;
    const size = layout.size;
    if (queued > size) {
      // Corrupt: the typed error and nothing else; not one byte changed, nothing copied out.
      if (!isXenconsError(error, 'ERR_RING_CORRUPT')) {
        throw new Error(`expected ERR_RING_CORRUPT, got ${String(error)} / result ${result}`);
      }
      expect(error.details).toEqual({ ring: layout.name, prod, cons, size });
      expect(Buffer.compare(all, before)).toBe(0);
      expect(dst.every((b) => b === 0x5a)).toBe(true);
      return;
    }
    if (error !== undefined) throw error;

    // Valid: compute the exact expected buffer from the indices.
    const expected = before.slice();
    const setU32 = (offset: number, value: number) =>
      new DataView(expected.buffer).setUint32(PAGE + offset, value >>> 0, true);
    const dataAt = (index: number) => PAGE + layout.dataOffset + (index & (size - 1));
    if (op === 'write') {
      const n = Math.min(length, size - queued);
      expect(result).toBe(n);
      for (let i = 0; i < n; i++) expected[dataAt(prod + i)] = src[i]!;
      setU32(layout.prodOffset, prod + n);
    } else if (op === 'read' || op === 'peek' || op === 'skip') {
      const n = Math.min(length, queued);
      expect(result).toBe(n);
      if (op !== 'skip') {
        for (let i = 0; i < n; i++) {
          if (dst[i] !== before[dataAt(cons + i)]) throw new Error(`byte ${i} read wrongly`);
        }
        expect(dst.subarray(n).every((b) => b === 0x5a)).toBe(true);
      }
      if (op !== 'peek') setU32(layout.consOffset, cons + n);
    } else if (op === 'free') {
      expect(result).toBe(size - queued);
    } else {
      expect(result).toBe(queued);
    }
    // Compare the whole buffer: the canaries before and after the page, the rest of the page.
    if (Buffer.compare(all, expected) !== 0) {
      const i = all.findIndex((b, j) => b !== expected[j]);
      throw new Error(`byte ${i - PAGE} of the page differs (${all[i]} != ${expected[i]})`);
    }
  };
}

describe.each(BACKENDS)('hostile indices, backend $name', ({ options, needs }) => {
  needs.describe(`backend ${options.backend}`, () => {
    it('works within bounds or throws ERR_RING_CORRUPT, never touching other memory', () => {
      fc.assert(fc.property(cases, hostileProperty(options)), { numRuns: 600 });
    });
  });
});
