import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { XENCONS_INTERFACE } from './console-layout.js';
import { PageView } from './page-view.js';
import { resetRing } from './reset-ring.js';
import { RingConsumer } from './ring-consumer.js';
import type { RingOptions } from './ring-endpoint.js';
import type { RingLayout } from './ring-layout.js';
import { RingProducer } from './ring-producer.js';
import { BACKENDS, pseudoRandomBytes } from './test-support.js';
import { XENSTORE_DOMAIN_INTERFACE } from './xenstore-layout.js';

// Model-based test: a plain array queue is the model, the ring in a page is the system. Indices
// start in a window around 2^32 - 2048, so most runs cross the u32 wrap.

interface Model {
  queue: number[];
  written: number;
}

interface Real {
  readonly page: PageView;
  readonly layout: RingLayout;
  readonly producer: RingProducer;
  readonly consumer: RingConsumer;
  readonly start: number;
}

function checkInvariants(m: Model, r: Real): void {
  const { producer, consumer, layout, page } = r;
  expect(producer.available() + producer.free()).toBe(layout.size);
  expect(consumer.available()).toBe(m.queue.length);
  expect(page.loadU32(layout.prodOffset)).toBe((r.start + m.written) >>> 0);
  expect(page.loadU32(layout.consOffset)).toBe((r.start + m.written - m.queue.length) >>> 0);
}

class WriteCommand implements fc.Command<Model, Real> {
  constructor(
    readonly length: number,
    readonly offset: number,
    readonly seed: number,
  ) {}
  check = () => true;
  run(m: Model, r: Real): void {
    const src = pseudoRandomBytes(this.offset + this.length, this.seed);
    const n = r.producer.write(src, this.offset, this.length);
    expect(n).toBe(Math.min(this.length, r.layout.size - m.queue.length));
    for (let i = 0; i < n; i++) m.queue.push(src[this.offset + i]!);
    m.written += n;
    checkInvariants(m, r);
  }
  toString = () => `write(${this.length} @${this.offset}, seed ${this.seed})`;
}

class ReadCommand implements fc.Command<Model, Real> {
  constructor(
    readonly length: number,
    readonly offset: number,
    readonly peek: boolean,
  ) {}
  check = () => true;
  run(m: Model, r: Real): void {
    const dst = new Uint8Array(this.offset + this.length + 8).fill(0xa5);
    const n = this.peek
      ? r.consumer.peek(dst, this.offset, this.length)
      : r.consumer.read(dst, this.offset, this.length);
    expect(n).toBe(Math.min(this.length, m.queue.length));
    const expected = this.peek ? m.queue.slice(0, n) : m.queue.splice(0, n);
    expect(
      Buffer.compare(dst.subarray(this.offset, this.offset + n), Uint8Array.from(expected)),
    ).toBe(0);
    // Nothing written around the span.
    expect(dst.subarray(0, this.offset).every((b) => b === 0xa5)).toBe(true);
    expect(dst.subarray(this.offset + n).every((b) => b === 0xa5)).toBe(true);
    checkInvariants(m, r);
  }
  toString = () => `${this.peek ? 'peek' : 'read'}(${this.length} @${this.offset})`;
}

class SkipCommand implements fc.Command<Model, Real> {
  constructor(readonly length: number) {}
  check = () => true;
  run(m: Model, r: Real): void {
    const n = r.consumer.skip(this.length);
    expect(n).toBe(Math.min(this.length, m.queue.length));
    m.queue.splice(0, n);
    checkInvariants(m, r);
  }
  toString = () => `skip(${this.length})`;
}

const chunk = fc.integer({ min: 1, max: 2048 });
const smallOffset = fc.integer({ min: 0, max: 7 });
const commands = fc.commands(
  [
    fc
      .tuple(chunk, smallOffset, fc.integer())
      .map(([len, off, seed]) => new WriteCommand(len, off, seed)),
    // Small writes as often as big ones: they are where index arithmetic goes wrong.
    fc
      .tuple(fc.integer({ min: 1, max: 17 }), smallOffset, fc.integer())
      .map(([len, off, seed]) => new WriteCommand(len, off, seed)),
    fc.tuple(chunk, smallOffset).map(([len, off]) => new ReadCommand(len, off, false)),
    fc
      .tuple(fc.integer({ min: 1, max: 17 }), smallOffset)
      .map(([len, off]) => new ReadCommand(len, off, false)),
    fc.tuple(chunk, smallOffset).map(([len, off]) => new ReadCommand(len, off, true)),
    fc.integer({ min: 0, max: 300 }).map((len) => new SkipCommand(len)),
  ],
  { maxCommands: 60 },
);

const LAYOUTS: readonly RingLayout[] = [
  XENCONS_INTERFACE.out,
  XENCONS_INTERFACE.in,
  XENSTORE_DOMAIN_INTERFACE.req,
  XENSTORE_DOMAIN_INTERFACE.rsp,
];

// A window around 2^32 - 2048: from 2^32 - 4096 to just past the wrap.
const startIndex = fc.integer({ min: 2 ** 32 - 4096, max: 2 ** 32 + 1024 }).map((i) => i >>> 0);

function runModel(options: RingOptions, numRuns: number): void {
  fc.assert(
    fc.property(
      fc.constantFrom(...LAYOUTS),
      startIndex,
      fc.boolean(),
      commands,
      (layout, start, shared, cmds) => {
        const memory = shared ? new SharedArrayBuffer(4096) : new ArrayBuffer(4096);
        const page = new PageView(memory);
        const canary = pseudoRandomBytes(4096, start);
        page.bytes.set(canary);
        resetRing(page, layout, start);
        const real: Real = {
          page,
          layout,
          start,
          producer: new RingProducer(page, layout, options),
          consumer: new RingConsumer(page, layout, options),
        };
        fc.modelRun(() => ({ model: { queue: [], written: 0 }, real }), cmds);
        // Outside this ring's data area and index words, the page is byte-for-byte untouched.
        const owned = (i: number) =>
          (i >= layout.dataOffset && i < layout.dataOffset + layout.size) ||
          (i >= layout.prodOffset && i < layout.prodOffset + 4) ||
          (i >= layout.consOffset && i < layout.consOffset + 4);
        for (let i = 0; i < 4096; i++) {
          if (!owned(i) && page.bytes[i] !== canary[i]) {
            throw new Error(`byte ${i} outside ${layout.name} was modified`);
          }
        }
      },
    ),
    { numRuns },
  );
}

describe.each(BACKENDS)('model-based ring test, backend $name', ({ options, needs }) => {
  needs.describe(`backend ${options.backend}`, () => {
    it('matches an array queue from indices near 2^32, chunks 1..2048', () => {
      runModel(options, 150);
    });
  });
});
