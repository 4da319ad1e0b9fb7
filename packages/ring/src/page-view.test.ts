import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadNative, nativeUnavailableReason } from '@xencons/native';
import { makeTempDir, requirement } from '@xencons/test-utils';
import { describe, expect, it } from 'vitest';
import { XENCONS_INTERFACE } from './console-layout.js';
import { consoleBackendRings, consoleFrontendRings } from './console-rings.js';
import { PageView } from './page-view.js';
import { RingConsumer } from './ring-consumer.js';
import { RingProducer } from './ring-producer.js';
import { BACKENDS } from './test-support.js';

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
});

const nativeAddon = requirement('the native addon', nativeUnavailableReason());

describe.each(BACKENDS)('a detached page, backend $name', ({ options, needs }) => {
  needs.describe(`backend ${options.backend}`, () => {
    const detached = expect.objectContaining({ code: 'ERR_RING_DETACHED' });

    it('operations on a transferred buffer throw ERR_RING_DETACHED instead of touching it', () => {
      const memory = new ArrayBuffer(4096);
      const page = new PageView(memory);
      const producer = new RingProducer(page, XENCONS_INTERFACE.out, options);
      const consumer = new RingConsumer(page, XENCONS_INTERFACE.out, options);
      expect(producer.write(Uint8Array.of(1, 2, 3))).toBe(3);
      const moved = structuredClone(memory, { transfer: [memory] });
      expect(page.detached).toBe(true);
      const buf = new Uint8Array(8).fill(0xaa);
      expect(() => producer.write(buf)).toThrow(detached);
      expect(() => consumer.read(buf)).toThrow(detached);
      expect(() => consumer.available()).toThrow(detached);
      expect(buf.every((x) => x === 0xaa)).toBe(true);
      expect(new PageView(moved).loadU32(XENCONS_INTERFACE.out.prodOffset)).toBe(3);
    });

    nativeAddon.describe('over a native mapping', () => {
      it('operations after unmap() throw ERR_RING_DETACHED and never reach the old address', () => {
        const native = loadNative()!;
        const dir = makeTempDir('xencons-ring-');
        try {
          const path = join(dir.path, 'page');
          writeFileSync(path, new Uint8Array(4096));
          const mapping = native.mapFile(path, 0, 4096, true);
          const rings = consoleBackendRings(mapping, options);
          expect(rings.in.write(Uint8Array.of(7, 8, 9))).toBe(3);
          native.unmap(mapping);
          // Very likely at the address just freed: the stale rings must not reach it.
          const fresh = native.mapFile(path, 0, 4096, true);
          try {
            expect(() => rings.in.write(Uint8Array.of(1))).toThrow(detached);
            expect(() => rings.out.read(new Uint8Array(8))).toThrow(detached);
            expect(new PageView(fresh).loadU32(XENCONS_INTERFACE.in.prodOffset)).toBe(3);
          } finally {
            native.unmap(fresh);
          }
        } finally {
          dir.remove();
        }
      });
    });
  });
});
