import { describe, expect, it } from 'vitest';
import { XENCONS_INTERFACE } from './console-layout.js';
import { consoleFrontendRings } from './console-rings.js';
import { PageView } from './page-view.js';
import { RingConsumer } from './ring-consumer.js';
import { RingProducer } from './ring-producer.js';

describe('PageView', () => {
  it('views a whole ArrayBuffer or SharedArrayBuffer', () => {
    for (const memory of [new ArrayBuffer(4096), new SharedArrayBuffer(4096)]) {
      const page = new PageView(memory);
      expect(page.byteLength).toBe(4096);
      expect(page.words.length).toBe(1024);
      page.storeU32(3084, 0xdead_beef);
      expect(new DataView(memory).getUint32(3084, true)).toBe(0xdead_beef);
      expect(page.loadU32(3084)).toBe(0xdead_beef);
      page.storeU8(3088, 0x101);
      expect(page.loadU8(3088)).toBe(1);
    }
  });

  it('views a window of a TypedArray or DataView, relative to its start', () => {
    const buffer = new ArrayBuffer(8192);
    const page = new PageView(new Uint32Array(buffer, 4096, 1024));
    expect(page.byteLength).toBe(4096);
    page.storeU32(0, 7);
    expect(new Uint32Array(buffer)[1024]).toBe(7);
    expect(PageView.of(page)).toBe(page);
    expect(new PageView(new DataView(buffer, 12, 4000)).byteLength).toBe(4000);
  });

  it('refuses a window that is not 4-byte aligned, and things that are not memory', () => {
    expect(() => new PageView(new Uint8Array(new ArrayBuffer(8192), 2, 4096))).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG' }),
    );
    expect(() => new PageView('page' as unknown as ArrayBuffer)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG' }),
    );
  });

  it('refuses unaligned or out-of-page word and byte accesses', () => {
    const page = new PageView(new ArrayBuffer(4096));
    for (const offset of [2, -4, 4096, 4094, 1.5]) {
      expect(() => page.loadU32(offset)).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARG' }),
      );
    }
    expect(() => page.storeU8(4096, 0)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG' }),
    );
  });

  it('a console page shorter than the 4.21 connection byte still works, but its control throws', () => {
    const rings = consoleFrontendRings(new ArrayBuffer(XENCONS_INTERFACE.sizeof));
    expect(rings.out.write(Uint8Array.of(1))).toBe(1);
    expect(() => rings.control.connection).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG' }),
    );
  });

  it('operations on a detached buffer throw ERR_RING_DETACHED instead of touching it', () => {
    const memory = new ArrayBuffer(4096);
    const page = new PageView(memory);
    const producer = new RingProducer(page, XENCONS_INTERFACE.out, { backend: 'ts' });
    const consumer = new RingConsumer(page, XENCONS_INTERFACE.out, { backend: 'ts' });
    structuredClone(memory, { transfer: [memory] });
    expect(page.detached).toBe(true);
    const buf = new Uint8Array(8);
    expect(() => producer.write(buf)).toThrow(
      expect.objectContaining({ code: 'ERR_RING_DETACHED' }),
    );
    expect(() => consumer.read(buf)).toThrow(
      expect.objectContaining({ code: 'ERR_RING_DETACHED' }),
    );
    expect(() => consumer.available()).toThrow(
      expect.objectContaining({ code: 'ERR_RING_DETACHED' }),
    );
  });
});
