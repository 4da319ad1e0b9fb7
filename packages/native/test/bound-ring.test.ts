import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RING_CORRUPT, RING_DETACHED, type RingHandle } from '../index.js';
import { bytes, expectInvalid, IN, indices, type Layout, OUT, setIndices } from './ring-support.js';
import { binding, indexUrl, native, runNode, tempDir } from './support.js';

/** A resizable ArrayBuffer (ES2024; Node 20 has it, our TS lib target does not). */
interface ResizableArrayBuffer extends ArrayBuffer {
  resize(byteLength: number): void;
}
function resizable(length: number, max: number): ResizableArrayBuffer {
  return Reflect.construct(ArrayBuffer, [length, { maxByteLength: max }]) as ResizableArrayBuffer;
}

describe('RING_DETACHED', () => {
  it('is -2', () => expect(RING_DETACHED).toBe(-2));
});

native.describe('bound rings', () => {
  const b = () => binding();
  const bind = (page: ArrayBuffer | ArrayBufferView, l: Layout) =>
    b().ringBind(page, l.data, l.size, l.prod, l.cons);

  it('round trip with wrap-around: two copies each way, indices published', () => {
    const page = new Uint8Array(4096);
    setIndices(page, OUT, 2040, 2040);
    const h = bind(page, OUT);
    const src = bytes(20, 1);
    expect(b().ringWrite(h, src, 0, 20)).toBe(20);
    expect(indices(page, OUT)).toEqual({ prod: 2060, cons: 2040 });
    expect([...page.subarray(OUT.data + 2040, OUT.data + 2048)]).toEqual([...src.subarray(0, 8)]);
    expect([...page.subarray(OUT.data, OUT.data + 12)]).toEqual([...src.subarray(8)]);
    expect(b().ringQueuedBound(h)).toBe(20);
    const dst = new Uint8Array(64);
    expect(b().ringRead(h, dst, 4, 60)).toBe(20);
    expect([...dst.subarray(4, 24)]).toEqual([...src]);
    expect(indices(page, OUT)).toEqual({ prod: 2060, cons: 2060 });
    expect(b().ringRead(h, dst, 0, 64)).toBe(0);
  });

  it('moves every byte in order from 0xFFFFFFF0, mixed with the unbound functions on the same ring', () => {
    const page = new Uint8Array(new ArrayBuffer(8192), 4096);
    setIndices(page, OUT, 0xfffffff0, 0xfffffff0);
    const h = bind(page, OUT);
    const input = bytes(200_000, 3);
    const output = new Uint8Array(input.length);
    let written = 0;
    let read = 0;
    for (let step = 0; read < input.length; step++) {
      const w = Math.min(((step * 7919) % 2300) + 1, input.length - written);
      // Alternate bound and unbound calls: both must see the same ring.
      const n =
        step % 3 === 0
          ? b().ringProduce(page, OUT.data, OUT.size, OUT.prod, OUT.cons, input, written, w)
          : b().ringWrite(h, input, written, w);
      expect(n).toBeGreaterThanOrEqual(0);
      written += n;
      expect(b().ringQueuedBound(h)).toBe(written - read);
      const r = Math.min(((step * 104729) % 2100) + 1, output.length - read);
      const m =
        step % 5 === 0
          ? b().ringConsume(page, OUT.data, OUT.size, OUT.prod, OUT.cons, output, read, r)
          : b().ringRead(h, output, read, r);
      read += m;
    }
    expect(Buffer.from(output).equals(Buffer.from(input))).toBe(true);
    expect(indices(page, OUT)).toEqual({
      prod: (0xfffffff0 + input.length) >>> 0,
      cons: (0xfffffff0 + input.length) >>> 0,
    });
  });

  it('a full ring accepts nothing more (0) and an empty one yields 0; prod - cons == size is full', () => {
    const page = new Uint8Array(4096);
    setIndices(page, IN, 5, 5);
    const h = bind(page, IN);
    expect(b().ringWrite(h, bytes(3000, 4), 0, 3000)).toBe(1024);
    expect(b().ringWrite(h, bytes(1, 5), 0, 1)).toBe(0);
    expect(b().ringQueuedBound(h)).toBe(1024);
    expect(b().ringRead(h, new Uint8Array(2048), 0, 2048)).toBe(1024);
    expect(b().ringRead(h, new Uint8Array(1), 0, 1)).toBe(0);
    expect(indices(page, IN)).toEqual({ prod: 5 + 1024, cons: 5 + 1024 });
  });

  it('hostile indices return RING_CORRUPT and touch nothing anywhere', () => {
    for (const [prod, cons] of [
      [2049, 0],
      [0, 1],
      [0x80000000, 0],
      [0xfffffff0, 0x10],
      [0xffffffff, 0],
    ] as const) {
      const page = bytes(4096, prod ^ cons);
      setIndices(page, OUT, prod, cons);
      const h = bind(page, OUT);
      const snapshot = Uint8Array.from(page);
      const dst = new Uint8Array(4096).fill(0xaa);
      expect(b().ringWrite(h, bytes(64, 6), 0, 64)).toBe(RING_CORRUPT);
      expect(b().ringRead(h, dst, 0, dst.length)).toBe(RING_CORRUPT);
      expect(b().ringQueuedBound(h)).toBe(RING_CORRUPT);
      expect(Buffer.from(page).equals(Buffer.from(snapshot))).toBe(true);
      expect(dst.every((x) => x === 0xaa)).toBe(true);
    }
  });

  it('a peer turning the indices hostile between calls is caught on the next call', () => {
    const page = new Uint8Array(4096);
    const h = bind(page, OUT);
    expect(b().ringWrite(h, bytes(100, 7), 0, 100)).toBe(100);
    setIndices(page, OUT, 100, 0x7fff0000); // the "consumer" jumped far ahead
    const snapshot = Uint8Array.from(page);
    expect(b().ringWrite(h, bytes(10, 8), 0, 10)).toBe(RING_CORRUPT);
    expect(b().ringRead(h, new Uint8Array(10), 0, 10)).toBe(RING_CORRUPT);
    expect(Buffer.from(page).equals(Buffer.from(snapshot))).toBe(true);
  });

  it('binding validates the layout once, with the same errors as the unbound functions', () => {
    const page = new Uint8Array(4096);
    const p = (data: number, size: number, prod: number, cons: number) =>
      b().ringBind(page, data, size, prod, cons);
    expectInvalid(() => p(1024, 2000, 3084, 3080), /power of two/);
    expectInvalid(() => p(1024, 0, 3084, 3080), /power of two/);
    expectInvalid(() => p(0, 2 ** 31, 3084, 3080), /power of two in 1..=2\^30/);
    expectInvalid(() => p(3072, 2048, 3084, 3080), /outside the page/);
    expectInvalid(() => p(1024, 2048, 4094, 3080), /outside the page/);
    expectInvalid(() => p(1024, 2048, 3085, 3080), /aligned/);
    expectInvalid(() => p(1024, 2048, 2000, 3080), /overlaps the ring data/);
    expectInvalid(() => p(1024, 2048, 3080, 3080), /overlap/);
    expectInvalid(() => p(1024.5, 2048, 3084, 3080), /integer/);
    expectInvalid(() => p(-1024, 2048, 3084, 3080), /integer/);
    expectInvalid(() => p(Number.NaN, 2048, 3084, 3080), /integer/);
    // @ts-expect-error: wrong type on purpose
    expectInvalid(() => b().ringBind({}, 1024, 2048, 3084, 3080), /ArrayBuffer/);
    expectInvalid(
      () =>
        b().ringBind(new SharedArrayBuffer(4096) as unknown as ArrayBuffer, 0, 1024, 3084, 3080),
      /SharedArrayBuffer in a Uint8Array/,
    );
    // A view whose byteOffset misaligns the index fields in memory.
    const shifted = new Uint8Array(new ArrayBuffer(4100), 1, 4096);
    expectInvalid(() => bind(shifted, OUT), /aligned/);
    // An already detached page has no room for any ring.
    const gone = new ArrayBuffer(4096);
    structuredClone(gone, { transfer: [gone] });
    expectInvalid(() => bind(gone, OUT), /outside the page/);
  });

  it('operations refuse anything but a live handle, and bad spans, with ERR_INVALID_ARG', () => {
    const page = new Uint8Array(4096);
    const h = bind(page, OUT);
    const src = new Uint8Array(16);
    for (const bad of [undefined, null, 1, 2 ** 20, {}, page, () => 0]) {
      expectInvalid(() => b().ringWrite(bad as unknown as RingHandle, src, 0, 1), /ring handle/);
      expectInvalid(() => b().ringRead(bad as unknown as RingHandle, src, 0, 1), /ring handle/);
      expectInvalid(() => b().ringQueuedBound(bad as unknown as RingHandle), /ring handle/);
    }
    expectInvalid(() => b().ringWrite(h, src, 10, 7), /exceeds its byteLength 16/);
    expectInvalid(() => b().ringRead(h, src, 17, 0), /exceeds/);
    expectInvalid(() => b().ringWrite(h, src, -1, 1), /srcOffset must be an integer/);
    expectInvalid(() => b().ringRead(h, src, 0.5, 1), /dstOffset must be an integer/);
    expectInvalid(() => b().ringWrite(h, src, 0, Number.NaN), /length must be an integer/);
    expectInvalid(() => b().ringWrite(h, src, 0, 2 ** 53), /length must be an integer/);
    // @ts-expect-error: wrong type on purpose
    expectInvalid(() => b().ringWrite(h, 'abc', 0, 1), /Uint8Array or an ArrayBuffer/);
    expect(indices(page, OUT)).toEqual({ prod: 0, cons: 0 });
  });

  it('takes its source and destination as a Uint8Array, a Buffer or an ArrayBuffer', () => {
    const page = new Uint8Array(new SharedArrayBuffer(4096));
    const h = bind(page, OUT);
    const whole = bytes(64, 9).buffer as ArrayBuffer;
    expect(b().ringWrite(h, whole, 8, 16)).toBe(16);
    expect(b().ringWrite(h, Buffer.from('xencons'), 0, 7)).toBe(7);
    const out = new ArrayBuffer(64);
    expect(b().ringRead(h, out, 32, 23)).toBe(23);
    expect([...new Uint8Array(out, 32, 16)]).toEqual([...new Uint8Array(whole, 8, 16)]);
    expect(Buffer.from(out, 48, 7).toString()).toBe('xencons');
    // A detached source has no bytes: a non-empty span is refused, an empty one moves nothing.
    const gone = new ArrayBuffer(16);
    const view = new Uint8Array(gone);
    structuredClone(gone, { transfer: [gone] });
    expectInvalid(() => b().ringWrite(h, view, 0, 1), /exceeds its byteLength 0/);
    expect(b().ringWrite(h, view, 0, 0)).toBe(0);
  });

  it('a page whose ArrayBuffer was transferred returns RING_DETACHED and moves nothing', () => {
    const buffer = new ArrayBuffer(8192);
    const page = new Uint8Array(buffer, 4096, 4096); // offsets relative to the view
    const h = bind(page, OUT);
    expect(b().ringWrite(h, bytes(10, 10), 0, 10)).toBe(10);
    const moved = structuredClone(buffer, { transfer: [buffer] });
    const dst = new Uint8Array(16).fill(0xaa);
    expect(b().ringWrite(h, bytes(10, 11), 0, 10)).toBe(RING_DETACHED);
    expect(b().ringRead(h, dst, 0, 16)).toBe(RING_DETACHED);
    expect(b().ringQueuedBound(h)).toBe(RING_DETACHED);
    expect(dst.every((x) => x === 0xaa)).toBe(true);
    // The memory now belongs to `moved`, untouched by the refused calls.
    expect(indices(new Uint8Array(moved, 4096), OUT)).toEqual({ prod: 10, cons: 0 });
  });

  it('a page whose resizable ArrayBuffer shrank below the ring returns RING_DETACHED', () => {
    const buffer = resizable(4096, 8192);
    const h = bind(buffer, OUT);
    expect(b().ringWrite(h, bytes(5, 12), 0, 5)).toBe(5);
    buffer.resize(3084); // out_prod (3084..3088) is gone
    expect(b().ringWrite(h, bytes(5, 13), 0, 5)).toBe(RING_DETACHED);
    expect(b().ringRead(h, new Uint8Array(5), 0, 5)).toBe(RING_DETACHED);
    // Growing again keeps the memory where it was, so the handle works again; the bytes that
    // came back (out_prod among them) are zero, as the language requires.
    buffer.resize(8192);
    expect(b().ringQueuedBound(h)).toBe(0);
    expect(b().ringWrite(h, bytes(5, 14), 0, 5)).toBe(5);
  });

  it('works on a SharedArrayBuffer page across threads: a worker writes 1 MiB through its own handle', async () => {
    const sab = new SharedArrayBuffer(4096);
    const page = new Uint8Array(sab);
    setIndices(page, OUT, 0xffffff00, 0xffffff00);
    const total = 1 << 20;
    const worker = new Worker(
      `
      const { workerData, parentPort } = require('node:worker_threads');
      import(${JSON.stringify(indexUrl)}).then(({ loadNative }) => {
        const b = loadNative();
        const h = b.ringBind(new Uint8Array(workerData.sab), 1024, 2048, 3084, 3080);
        const chunk = new Uint8Array(1500);
        let sent = 0;
        while (sent < workerData.total) {
          const n = Math.min(chunk.length, workerData.total - sent);
          for (let i = 0; i < n; i++) chunk[i] = (sent + i) * 31 & 0xff;
          for (let off = 0; off < n; ) {
            const m = b.ringWrite(h, chunk, off, n - off);
            if (m < 0) throw new Error('ringWrite returned ' + m);
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
    const h = bind(page, OUT);
    const dst = new Uint8Array(2048);
    let got = 0;
    let bad = -1;
    const deadline = Date.now() + 20_000;
    while (got < total && Date.now() < deadline) {
      const n = b().ringRead(h, dst, 0, dst.length);
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

native.describe('bound rings over native mappings', () => {
  let dir: ReturnType<typeof tempDir>;
  let file: string;
  const b = () => binding();

  beforeEach(() => {
    dir = tempDir();
    file = join(dir.path, 'console-page');
    writeFileSync(file, Buffer.alloc(b().pageSize()));
  });
  afterEach(() => dir.remove());

  it('unmap while bound: every operation returns RING_DETACHED, a new mapping at the same address is untouched', () => {
    const ps = b().pageSize();
    const mapping = b().mapFile(file, 0, ps, true);
    const h = b().ringBind(mapping, OUT.data, OUT.size, OUT.prod, OUT.cons);
    expect(b().ringWrite(h, bytes(100, 14), 0, 100)).toBe(100);
    expect(b().unmap(mapping)).toBe(true);
    expect(mapping.byteLength).toBe(0);
    // Very likely the address just freed: the stale handle must not reach it.
    const fresh = b().mapFile(file, 0, ps, true);
    try {
      const snapshot = Uint8Array.from(new Uint8Array(fresh));
      expect(b().ringWrite(h, bytes(100, 15), 0, 100)).toBe(RING_DETACHED);
      expect(b().ringRead(h, new Uint8Array(100), 0, 100)).toBe(RING_DETACHED);
      expect(b().ringQueuedBound(h)).toBe(RING_DETACHED);
      expect(Buffer.from(new Uint8Array(fresh)).equals(Buffer.from(snapshot))).toBe(true);
      expect(indices(new Uint8Array(fresh), OUT)).toEqual({ prod: 100, cons: 0 });
    } finally {
      b().unmap(fresh);
    }
  });

  it('a handle keeps its mapping alive; once the handle is collected the mapping is too', () => {
    const code = `
      const { loadNative } = await import(${JSON.stringify(indexUrl)});
      const b = loadNative();
      const settle = async () => {
        for (let i = 0; i < 10; i++) { globalThis.gc(); await new Promise((r) => setImmediate(r)); }
      };
      let h = b.ringBind(b.mapFile(${JSON.stringify(file)}, 0, b.pageSize(), true), 1024, 2048, 3084, 3080);
      await settle(); // the buffer itself is unreachable from JS now
      const whileBound = b.mappingCount();
      const wrote = b.ringWrite(h, new Uint8Array(64), 0, 64);
      const queued = b.ringQueuedBound(h);
      h = null;
      await settle();
      console.log(JSON.stringify({ whileBound, wrote, queued, after: b.mappingCount() }));
    `;
    const r = runNode(code, { args: ['--expose-gc'] });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ whileBound: 1, wrote: 64, queued: 64, after: 0 });
  });

  it('rings bound over 200 mappings and dropped release every mapping', () => {
    const code = `
      const { loadNative } = await import(${JSON.stringify(indexUrl)});
      const b = loadNative();
      const ps = b.pageSize();
      (() => {
        for (let i = 0; i < 200; i++) {
          const h = b.ringBind(b.mapFile(${JSON.stringify(file)}, 0, ps, true), 1024, 2048, 3084, 3080);
          b.ringWrite(h, new Uint8Array(1), 0, 1);
        }
      })();
      const before = b.mappingCount();
      for (let i = 0; i < 20 && b.mappingCount() > 0; i++) {
        globalThis.gc();
        await new Promise((r) => setImmediate(r));
      }
      console.log(JSON.stringify({ before, after: b.mappingCount() }));
    `;
    const r = runNode(code, { args: ['--expose-gc'] });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, number>;
    expect(out.before).toBeGreaterThan(100);
    expect(out.after).toBe(0);
  });
});
