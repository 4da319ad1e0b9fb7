import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { RING_CORRUPT } from '../index.js';
import { bytes, expectInvalid, IN, indices, type Layout, OUT, setIndices } from './ring-support.js';
import { binding, indexUrl, native } from './support.js';

native.describe('fenced ring copies', () => {
  const b = () => binding();
  const produce = (page: ArrayBuffer | ArrayBufferView, l: Layout, src: Uint8Array) =>
    b().ringProduce(page, l.data, l.size, l.prod, l.cons, src, 0, src.length);
  const consume = (
    page: ArrayBuffer | ArrayBufferView,
    l: Layout,
    dst: Uint8Array,
    len = dst.length,
  ) => b().ringConsume(page, l.data, l.size, l.prod, l.cons, dst, 0, len);

  it('round trip with wrap-around: two copies each way, indices published', () => {
    const page = new Uint8Array(4096);
    setIndices(page, OUT, 2040, 2040);
    const src = bytes(20, 1);
    expect(produce(page, OUT, src)).toBe(20);
    expect(indices(page, OUT)).toEqual({ prod: 2060, cons: 2040 });
    // The first 8 bytes sit at the end of `out`, the other 12 wrapped to its start.
    expect([...page.subarray(OUT.data + 2040, OUT.data + 2048)]).toEqual([...src.subarray(0, 8)]);
    expect([...page.subarray(OUT.data, OUT.data + 12)]).toEqual([...src.subarray(8)]);
    expect(b().ringQueued(page, OUT.size, OUT.prod, OUT.cons)).toBe(20);
    const dst = new Uint8Array(64);
    expect(consume(page, OUT, dst)).toBe(20);
    expect([...dst.subarray(0, 20)]).toEqual([...src]);
    expect(indices(page, OUT)).toEqual({ prod: 2060, cons: 2060 });
    expect(consume(page, OUT, dst)).toBe(0);
  });

  it('indices near 0xFFFFFFF0 wrap at 2^32', () => {
    const page = new Uint8Array(4096);
    setIndices(page, IN, 0xfffffff0, 0xfffffff0);
    const src = bytes(100, 2);
    expect(produce(page, IN, src)).toBe(100);
    expect(indices(page, IN).prod).toBe(0x54); // 0xfffffff0 + 100 mod 2^32
    expect(b().ringQueued(page, IN.size, IN.prod, IN.cons)).toBe(100);
    const dst = new Uint8Array(100);
    expect(consume(page, IN, dst, 60)).toBe(60);
    expect(indices(page, IN).cons).toBe(0x2c);
    expect(b().ringConsume(page, IN.data, IN.size, IN.prod, IN.cons, dst, 60, 40)).toBe(40);
    expect([...dst]).toEqual([...src]);
  });

  it('a model run from 0xFFFFFFF0 with mixed chunk sizes moves every byte in order', () => {
    const page = new Uint8Array(4096);
    setIndices(page, OUT, 0xfffffff0, 0xfffffff0);
    const input = bytes(200_000, 3);
    const output = new Uint8Array(input.length);
    let written = 0;
    let read = 0;
    let step = 0;
    while (read < input.length) {
      const w = Math.min(((step * 7919) % 2300) + 1, input.length - written);
      const n = b().ringProduce(page, OUT.data, OUT.size, OUT.prod, OUT.cons, input, written, w);
      expect(n).toBeGreaterThanOrEqual(0);
      written += n;
      const queued = b().ringQueued(page, OUT.size, OUT.prod, OUT.cons);
      expect(queued).toBe(written - read);
      const r = ((step * 104729) % 2100) + 1;
      const m = b().ringConsume(
        page,
        OUT.data,
        OUT.size,
        OUT.prod,
        OUT.cons,
        output,
        read,
        Math.min(r, output.length - read),
      );
      read += m;
      step++;
    }
    expect(Buffer.from(output).equals(Buffer.from(input))).toBe(true);
    const { prod, cons } = indices(page, OUT);
    expect(prod).toBe(cons);
    expect(prod).toBe((0xfffffff0 + input.length) >>> 0);
  });

  it('a full ring accepts nothing more (returns 0) and an empty one yields 0', () => {
    const page = new Uint8Array(4096);
    setIndices(page, OUT, 5, 5);
    expect(produce(page, OUT, bytes(3000, 4))).toBe(2048);
    expect(produce(page, OUT, bytes(1, 5))).toBe(0);
    expect(b().ringQueued(page, OUT.size, OUT.prod, OUT.cons)).toBe(2048);
    expect(consume(page, OUT, new Uint8Array(2048))).toBe(2048);
    expect(consume(page, OUT, new Uint8Array(1))).toBe(0);
    expect(indices(page, OUT)).toEqual({ prod: 5 + 2048, cons: 5 + 2048 });
  });

  it('corrupt indices return RING_CORRUPT and touch nothing anywhere', () => {
    for (const [prod, cons] of [
      [2049, 0],
      [0, 1],
      [0x80000000, 0],
      [0xfffffff0, 0x10],
    ] as const) {
      const page = bytes(4096, prod ^ cons);
      setIndices(page, OUT, prod, cons);
      const snapshot = Uint8Array.from(page);
      const src = bytes(64, 6);
      const dst = new Uint8Array(64).fill(0xaa);
      expect(produce(page, OUT, src)).toBe(RING_CORRUPT);
      expect(consume(page, OUT, dst)).toBe(RING_CORRUPT);
      expect(b().ringQueued(page, OUT.size, OUT.prod, OUT.cons)).toBe(RING_CORRUPT);
      expect(Buffer.from(page).equals(Buffer.from(snapshot))).toBe(true);
      expect(dst.every((x) => x === 0xaa)).toBe(true);
    }
  });

  it('prod - cons == size is full, not corrupt', () => {
    const page = new Uint8Array(4096);
    setIndices(page, IN, 1024 + 7, 7);
    expect(b().ringQueued(page, IN.size, IN.prod, IN.cons)).toBe(1024);
    expect(produce(page, IN, bytes(1, 7))).toBe(0);
  });

  it('rejects bad layouts and ranges with ERR_INVALID_ARG', () => {
    const page = new Uint8Array(4096);
    const src = new Uint8Array(16);
    const p = (...a: [number, number, number, number, Uint8Array, number, number]) =>
      b().ringProduce(page, ...a);
    expectInvalid(() => p(1024, 2000, 3084, 3080, src, 0, 1), /power of two/);
    expectInvalid(() => p(1024, 0, 3084, 3080, src, 0, 1), /power of two/);
    expectInvalid(() => p(3072, 2048, 3084, 3080, src, 0, 1), /outside the page/);
    expectInvalid(() => p(1024, 2048, 4094, 3080, src, 0, 1), /outside the page/);
    expectInvalid(() => p(1024, 2048, 3085, 3080, src, 0, 1), /aligned/);
    expectInvalid(() => p(1024, 2048, 2000, 3080, src, 0, 1), /overlaps the ring data/);
    expectInvalid(() => p(1024, 2048, 3080, 3080, src, 0, 1), /overlap/);
    expectInvalid(() => p(1024, 2048, 3084, 3080, src, 10, 7), /exceeds/);
    expectInvalid(() => p(1024, 2048, 3084, 3080, src, -1, 1), /integer/);
    expectInvalid(() => p(1024, 2048, 3084, 3080, src, 0, Number.NaN), /integer/);
    expectInvalid(() => p(1024.5, 2048, 3084, 3080, src, 0, 1), /integer/);
    expectInvalid(
      // @ts-expect-error: wrong type on purpose
      () => b().ringProduce(page, 1024, 2048, 3084, 3080, new Uint16Array(4), 0, 1),
      /Uint8Array/,
    );
    expectInvalid(
      // @ts-expect-error: wrong type on purpose
      () => b().ringConsume({}, 1024, 2048, 3084, 3080, src, 0, 1),
      /ArrayBuffer/,
    );
    expectInvalid(() => b().ringQueued(page, 2048, 3083, 3080), /aligned/);
    // A view whose byteOffset misaligns the index fields in memory.
    const shifted = new Uint8Array(new ArrayBuffer(4100), 1, 4096);
    expectInvalid(() => b().ringQueued(shifted, 2048, 3084, 3080), /aligned/);
    expect(indices(page, OUT)).toEqual({ prod: 0, cons: 0 });
  });

  it('accepts an ArrayBuffer, a DataView and offset views (offsets are relative to the view)', () => {
    const buffer = new ArrayBuffer(8192);
    const view = new Uint8Array(buffer, 4096, 4096);
    const src = bytes(10, 8);
    // On the whole ArrayBuffer the ring sits 4096 bytes in; on the views, at their own offsets.
    expect(b().ringProduce(buffer, 4096 + 1024, 2048, 4096 + 3084, 4096 + 3080, src, 0, 10)).toBe(
      10,
    );
    expect(b().ringQueued(view, OUT.size, OUT.prod, OUT.cons)).toBe(10);
    const dv = new DataView(buffer, 4096);
    const dst = new Uint8Array(10);
    expect(consume(dv, OUT, dst)).toBe(10);
    expect([...dst]).toEqual([...src]);
  });

  it('works on views over a SharedArrayBuffer', () => {
    const page = new Uint8Array(new SharedArrayBuffer(4096));
    setIndices(page, OUT, 0xfffffffe, 0xfffffffe);
    const src = bytes(300, 9);
    expect(produce(page, OUT, src)).toBe(300);
    const dst = new Uint8Array(new SharedArrayBuffer(300));
    expect(consume(new DataView(page.buffer), OUT, dst)).toBe(300);
    expect([...dst]).toEqual([...src]);
    expect(Atomics.load(new Uint32Array(page.buffer), OUT.prod / 4)).toBe(298);
  });

  it('a bare SharedArrayBuffer is refused with a hint (wrap it in a view)', () => {
    expectInvalid(
      () => b().ringQueued(new SharedArrayBuffer(4096) as unknown as ArrayBuffer, 2048, 3084, 3080),
      /SharedArrayBuffer in a Uint8Array/,
    );
  });
});

native.describe('fenced ring copies across threads', () => {
  it('a worker produces 4 MiB through a SharedArrayBuffer page while this thread consumes', async () => {
    const b = binding();
    const sab = new SharedArrayBuffer(4096);
    const page = new Uint8Array(sab);
    setIndices(page, OUT, 0xffffff00, 0xffffff00);
    const total = 4 << 20;
    const worker = new Worker(
      `
      const { workerData, parentPort } = require('node:worker_threads');
      import(${JSON.stringify(indexUrl)}).then(({ loadNative }) => {
        const b = loadNative();
        const page = new Uint8Array(workerData.sab);
        const chunk = new Uint8Array(1500);
        let sent = 0, x = 12345;
        while (sent < workerData.total) {
          const n = Math.min(chunk.length, workerData.total - sent);
          for (let i = 0; i < n; i++) chunk[i] = (sent + i) * 31 & 0xff;
          let off = 0;
          while (off < n) {
            const m = b.ringProduce(page, 1024, 2048, 3084, 3080, chunk, off, n - off);
            if (m < 0) throw new Error('corrupt');
            off += m;
          }
          sent += n;
        }
        parentPort.postMessage('done');
      });
      `,
      { eval: true, workerData: { sab, total } },
    );
    const exited = new Promise<number>((resolve, reject) => {
      worker.on('exit', resolve);
      worker.on('error', reject);
    });
    const dst = new Uint8Array(2048);
    let got = 0;
    let bad = -1;
    const deadline = Date.now() + 20_000;
    while (got < total && Date.now() < deadline) {
      const n = b.ringConsume(page, 1024, 2048, 3084, 3080, dst, 0, dst.length);
      expect(n).toBeGreaterThanOrEqual(0);
      for (let i = 0; i < n && bad < 0; i++)
        if (dst[i] !== (((got + i) * 31) & 0xff)) bad = got + i;
      got += n;
      if (n === 0) await new Promise((r) => setImmediate(r));
    }
    expect(bad).toBe(-1);
    expect(got).toBe(total);
    expect(await exited).toBe(0);
  });
});

describe('RING_CORRUPT', () => {
  it('is -1', () => expect(RING_CORRUPT).toBe(-1));
});
