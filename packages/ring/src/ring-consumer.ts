import { XenconsError } from '@xencons/errors';
import { checkSpan, RingEndpoint } from './ring-endpoint.js';
import { ringCorrupt } from './ring-errors.js';

/**
 * The reading side of one byte ring: loads the producer index (acquire), copies bytes out, then
 * publishes the consumer index (release). It owns `cons`; `prod` belongs to the other side and
 * is never trusted.
 */
export class RingConsumer extends RingEndpoint {
  /**
   * Copies up to `length` queued bytes into `dst` from `offset` and releases their space. Returns
   * the bytes read, 0 when the ring is empty. Throws `ERR_RING_CORRUPT` (reading and publishing
   * nothing) when the indices are inconsistent.
   */
  read(dst: Uint8Array, offset = 0, length: number = dst.length - offset): number {
    checkSpan('read', dst, offset, length);
    const nativeRing = this.nativeRing;
    if (nativeRing !== null && length >= this.nativeThreshold) {
      // The addon checks that the page is still attached (RING_DETACHED otherwise).
      const n = nativeRing.read(nativeRing.handle, dst, offset, length);
      if (n < 0) throw this.nativeFailure(n);
      return n;
    }
    this.assertAttached();
    const cons = this.words[this.consWord]!;
    const n = this.#copyOut(cons, dst, offset, length);
    if (n !== 0) Atomics.store(this.words, this.consWord, (cons + n) >>> 0);
    return n;
  }

  /**
   * Copies up to `length` queued bytes into `dst` without consuming them (always the TS copy).
   * Returns the bytes copied.
   */
  peek(dst: Uint8Array, offset = 0, length: number = dst.length - offset): number {
    checkSpan('peek', dst, offset, length);
    this.assertAttached();
    return this.#copyOut(this.words[this.consWord]!, dst, offset, length);
  }

  /** Consumes up to `length` queued bytes without copying them. Returns the bytes skipped. */
  skip(length: number): number {
    if (!Number.isInteger(length) || length < 0) {
      throw new XenconsError('ERR_INVALID_ARG', `skip: length ${length} is not a byte count`, {
        details: { length },
      });
    }
    this.assertAttached();
    const words = this.words;
    const prod = Atomics.load(words, this.prodWord);
    const cons = words[this.consWord]!;
    const queued = (prod - cons) >>> 0;
    if (queued > this.size) throw ringCorrupt(this.layout, prod, cons);
    const n = length < queued ? length : queued;
    if (n !== 0) Atomics.store(words, this.consWord, (cons + n) >>> 0);
    return n;
  }

  /** Loads `prod` once (acquire), validates it against `cons`, copies out. Publishes nothing. */
  #copyOut(cons: number, dst: Uint8Array, offset: number, length: number): number {
    const prod = Atomics.load(this.words, this.prodWord);
    const queued = (prod - cons) >>> 0;
    const size = this.size;
    if (queued > size) throw ringCorrupt(this.layout, prod, cons);
    const n = length < queued ? length : queued;
    if (n === 0) return 0;
    const bytes = this.bytes;
    const start = cons & this.mask;
    const at = this.dataOffset + start;
    const first = size - start;
    if (n <= 16) {
      // Tiny reads: a loop beats creating subarray views.
      if (n <= first) {
        for (let i = 0; i < n; i++) dst[offset + i] = bytes[at + i]!;
      } else {
        for (let i = 0; i < first; i++) dst[offset + i] = bytes[at + i]!;
        const base = this.dataOffset - first;
        for (let i = first; i < n; i++) dst[offset + i] = bytes[base + i]!;
      }
    } else if (n <= first) {
      dst.set(bytes.subarray(at, at + n), offset);
    } else {
      dst.set(bytes.subarray(at, at + first), offset);
      dst.set(bytes.subarray(this.dataOffset, this.dataOffset + n - first), offset + first);
    }
    return n;
  }
}
