import { isXenconsError } from '@xencons/errors';
import { describe, expect, it } from 'vitest';
import { XENCONS_INTERFACE } from './console-layout.js';
import { consoleBackendRings, consoleFrontendRings } from './console-rings.js';
import { PageView } from './page-view.js';
import { resetRing } from './reset-ring.js';
import { RingConsumer } from './ring-consumer.js';
import { RingProducer } from './ring-producer.js';
import { BACKENDS, pseudoRandomBytes } from './test-support.js';
import { XENSTORE_DOMAIN_INTERFACE } from './xenstore-layout.js';
import { xenstoreClientRings, xenstoreServerRings } from './xenstore-rings.js';

const OUT = XENCONS_INTERFACE.out;
const IN = XENCONS_INTERFACE.in;

function corruptCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isXenconsError(err) ? err.code : `not a XenconsError: ${String(err)}`;
  }
  return undefined;
}

describe.each(BACKENDS)('ring operations, backend $name', ({ options, needs }) => {
  needs.describe(`backend ${options.backend}`, () => {
    const outRing = (memory: ArrayBufferLike | ArrayBufferView = new ArrayBuffer(4096)) => {
      const page = new PageView(memory);
      return {
        page,
        producer: new RingProducer(page, OUT, options),
        consumer: new RingConsumer(page, OUT, options),
      };
    };

    it('moves bytes through the ring and reports free/available', () => {
      const { producer, consumer } = outRing();
      expect(producer.free()).toBe(2048);
      expect(consumer.available()).toBe(0);
      const data = pseudoRandomBytes(300, 1);
      expect(producer.write(data)).toBe(300);
      expect(consumer.available()).toBe(300);
      expect(producer.free()).toBe(1748);
      const got = new Uint8Array(300);
      expect(consumer.read(got)).toBe(300);
      expect(got).toEqual(data);
      expect(consumer.available()).toBe(0);
      expect(consumer.read(got)).toBe(0);
    });

    it('writes partially when full and 0 when full', () => {
      const { producer, consumer } = outRing();
      const data = pseudoRandomBytes(3000, 2);
      expect(producer.write(data)).toBe(2048);
      expect(producer.write(data, 2048)).toBe(0);
      expect(producer.free()).toBe(0);
      const got = new Uint8Array(3000);
      expect(consumer.read(got, 0, 100)).toBe(100);
      expect(producer.write(data, 2048, 952)).toBe(100);
      expect(consumer.read(got, 100)).toBe(2048);
      expect(got.subarray(0, 2148)).toEqual(data.subarray(0, 2148));
    });

    it('honours offset and length in src and dst', () => {
      const { producer, consumer } = outRing();
      const data = pseudoRandomBytes(64, 3);
      expect(producer.write(data, 10, 20)).toBe(20);
      const got = new Uint8Array(64).fill(0xee);
      expect(consumer.read(got, 5, 50)).toBe(20);
      expect(got.subarray(5, 25)).toEqual(data.subarray(10, 30));
      expect(got.subarray(0, 5).every((b) => b === 0xee)).toBe(true);
      expect(got.subarray(25).every((b) => b === 0xee)).toBe(true);
    });

    it('wraps the data area and the u32 indices together', () => {
      const { page, producer, consumer } = outRing();
      resetRing(page, OUT, 0xffff_fff0);
      const data = pseudoRandomBytes(2048, 4);
      // 0xfffffff0 & 2047 = 2032: the first 16 bytes go to the end, the rest wrap to the start.
      expect(producer.write(data, 0, 40)).toBe(40);
      expect(page.loadU32(OUT.prodOffset)).toBe(24);
      expect(page.bytes.subarray(OUT.dataOffset + 2032, OUT.dataOffset + 2048)).toEqual(
        data.subarray(0, 16),
      );
      expect(page.bytes.subarray(OUT.dataOffset, OUT.dataOffset + 24)).toEqual(
        data.subarray(16, 40),
      );
      const got = new Uint8Array(40);
      expect(consumer.read(got)).toBe(40);
      expect(got).toEqual(data.subarray(0, 40));
      expect(page.loadU32(OUT.consOffset)).toBe(24);
    });

    it('keeps the data and indices at the offsets of struct xencons_interface', () => {
      const buffer = new ArrayBuffer(4096);
      const guest = consoleFrontendRings(buffer, options);
      const dom0 = consoleBackendRings(buffer, options);
      expect(guest.out.write(Uint8Array.of(1, 2, 3))).toBe(3);
      expect(dom0.in.write(Uint8Array.of(9, 8))).toBe(2);
      const bytes = new Uint8Array(buffer);
      const view = new DataView(buffer);
      expect([...bytes.subarray(1024, 1027)]).toEqual([1, 2, 3]);
      expect([...bytes.subarray(0, 2)]).toEqual([9, 8]);
      expect(view.getUint32(3084, true)).toBe(3); // out_prod
      expect(view.getUint32(3076, true)).toBe(2); // in_prod
      const got = new Uint8Array(8);
      expect(dom0.out.read(got)).toBe(3);
      expect(guest.in.read(got, 3)).toBe(2);
      expect([...got.subarray(0, 5)]).toEqual([1, 2, 3, 9, 8]);
      expect(view.getUint32(3080, true)).toBe(3); // out_cons
      expect(view.getUint32(3072, true)).toBe(2); // in_cons
      expect(guest.control.connection).toBe(0);
      dom0.control.connection = 1;
      expect(bytes[3088]).toBe(1);
    });

    it('xenstore client and server rings talk through struct xenstore_domain_interface', () => {
      const buffer = new SharedArrayBuffer(4096);
      const client = xenstoreClientRings(buffer, options);
      const server = xenstoreServerRings(buffer, options);
      const request = pseudoRandomBytes(1500, 5);
      const got = new Uint8Array(1500);
      // A message larger than the 1024-byte ring streams through in pieces.
      let sent = 0;
      let received = 0;
      while (received < request.length) {
        sent += client.req.write(request, sent);
        received += server.req.read(got, received);
      }
      expect(got).toEqual(request);
      expect(server.rsp.write(Uint8Array.of(7))).toBe(1);
      expect(new Uint8Array(buffer)[1024]).toBe(7);
      expect(client.rsp.available()).toBe(1);
      const view = new DataView(buffer);
      expect(view.getUint32(XENSTORE_DOMAIN_INTERFACE.req.prodOffset, true)).toBe(1500);
      expect(view.getUint32(XENSTORE_DOMAIN_INTERFACE.req.consOffset, true)).toBe(1500);
      server.control.serverFeatures = 3;
      client.control.connection = 1;
      server.control.error = 2;
      expect(view.getUint32(2064, true)).toBe(3);
      expect(view.getUint32(2068, true)).toBe(1);
      expect(client.control.error).toBe(2);
      expect(client.control.evtchnPort).toBe(0);
    });

    it('works on a 4-byte-aligned window of a larger buffer (TypedArray and DataView)', () => {
      const big = new ArrayBuffer(3 * 4096);
      const canary = pseudoRandomBytes(big.byteLength, 6);
      new Uint8Array(big).set(canary);
      const window = new DataView(big, 4096, 4096);
      resetRing(window, OUT);
      const { producer, consumer } = outRing(window);
      const data = pseudoRandomBytes(1000, 7);
      expect(producer.write(data)).toBe(1000);
      const got = new Uint8Array(1000);
      expect(consumer.read(got)).toBe(1000);
      expect(got).toEqual(data);
      const after = new Uint8Array(big);
      expect(after.subarray(0, 4096)).toEqual(canary.subarray(0, 4096));
      expect(after.subarray(8192)).toEqual(canary.subarray(8192));
      expect(after.subarray(4096 + 1024, 4096 + 2024)).toEqual(data);
    });

    it('throws ERR_RING_CORRUPT when prod - cons exceeds the size, and changes nothing', () => {
      const { page, producer, consumer } = outRing();
      page.storeU32(OUT.consOffset, 100);
      page.storeU32(OUT.prodOffset, 100 + 2049);
      const before = page.bytes.slice();
      const buf = new Uint8Array(64);
      expect(corruptCode(() => producer.write(buf))).toBe('ERR_RING_CORRUPT');
      expect(corruptCode(() => consumer.read(buf))).toBe('ERR_RING_CORRUPT');
      expect(corruptCode(() => consumer.peek(buf))).toBe('ERR_RING_CORRUPT');
      expect(corruptCode(() => consumer.skip(1))).toBe('ERR_RING_CORRUPT');
      expect(corruptCode(() => producer.free())).toBe('ERR_RING_CORRUPT');
      expect(corruptCode(() => consumer.available())).toBe('ERR_RING_CORRUPT');
      expect(page.bytes).toEqual(before);
      try {
        producer.write(buf);
      } catch (err) {
        expect(err).toMatchObject({
          code: 'ERR_RING_CORRUPT',
          details: { ring: 'xencons_interface.out', prod: 2149, cons: 100, size: 2048 },
        });
      }
    });

    it('accepts exactly size bytes queued (a full ring) and cons ahead of prod is corrupt', () => {
      const { page, producer, consumer } = outRing();
      page.storeU32(OUT.consOffset, 0xffff_ff00);
      page.storeU32(OUT.prodOffset, (0xffff_ff00 + 2048) >>> 0);
      expect(producer.free()).toBe(0);
      expect(consumer.available()).toBe(2048);
      page.storeU32(OUT.prodOffset, 5);
      page.storeU32(OUT.consOffset, 6);
      expect(corruptCode(() => consumer.read(new Uint8Array(1)))).toBe('ERR_RING_CORRUPT');
    });

    it('peek copies without consuming; skip consumes without copying', () => {
      const { producer, consumer } = outRing();
      const data = pseudoRandomBytes(100, 8);
      producer.write(data);
      const got = new Uint8Array(100);
      expect(consumer.peek(got, 0, 10)).toBe(10);
      expect(got.subarray(0, 10)).toEqual(data.subarray(0, 10));
      expect(consumer.available()).toBe(100);
      expect(consumer.skip(30)).toBe(30);
      expect(consumer.read(got)).toBe(70);
      expect(got.subarray(0, 70)).toEqual(data.subarray(30));
      expect(consumer.skip(5)).toBe(0);
    });

    it('rejects spans outside the buffer with ERR_INVALID_ARG', () => {
      const { producer, consumer } = outRing();
      const buf = new Uint8Array(10);
      expect(corruptCode(() => producer.write(buf, 5, 6))).toBe('ERR_INVALID_ARG');
      expect(corruptCode(() => producer.write(buf, -1, 2))).toBe('ERR_INVALID_ARG');
      expect(corruptCode(() => producer.write(buf, 11))).toBe('ERR_INVALID_ARG');
      expect(corruptCode(() => consumer.read(buf, 0.5, 2))).toBe('ERR_INVALID_ARG');
      expect(corruptCode(() => consumer.read(buf, 0, Number.NaN))).toBe('ERR_INVALID_ARG');
      expect(corruptCode(() => consumer.skip(-1))).toBe('ERR_INVALID_ARG');
      expect(producer.write(buf, 10)).toBe(0);
    });

    it('moves data through the small 1024-byte in ring with wrap', () => {
      const page = new PageView(new ArrayBuffer(4096));
      resetRing(page, IN, 1000);
      const producer = new RingProducer(page, IN, options);
      const consumer = new RingConsumer(page, IN, options);
      const data = pseudoRandomBytes(5000, 9);
      const got = new Uint8Array(5000);
      let w = 0;
      let r = 0;
      while (r < data.length) {
        w += producer.write(data, w, Math.min(700, data.length - w));
        r += consumer.read(got, r, Math.min(333, data.length - r));
      }
      expect(got).toEqual(data);
      // Writes stayed in in[] (0..1023): out[] is untouched.
      expect(page.bytes.subarray(1024, 3072).every((b) => b === 0)).toBe(true);
    });
  });
});

describe('backend selection', () => {
  it('ts never goes native; auto uses the threshold when the addon is loaded', () => {
    const page = new PageView(new ArrayBuffer(4096));
    const ts = new RingProducer(page, OUT, { backend: 'ts' });
    expect(ts.usesNative(4096)).toBe(false);
    const auto = new RingProducer(page, OUT, { nativeThreshold: 100 });
    expect(auto.usesNative(99)).toBe(false);
    if (auto.nativeThreshold !== Number.POSITIVE_INFINITY) expect(auto.usesNative(100)).toBe(true);
  });

  it('rejects an unknown backend and a negative threshold', () => {
    const page = new ArrayBuffer(4096);
    expect(() => new RingProducer(page, OUT, { backend: 'rust' as 'ts' })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG' }),
    );
    expect(() => new RingProducer(page, OUT, { nativeThreshold: -1 })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG' }),
    );
  });

  it('rejects a page too small for the layout', () => {
    expect(() => new RingProducer(new ArrayBuffer(3000), OUT)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG' }),
    );
  });
});
