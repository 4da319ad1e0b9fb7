import { checkSpan, RingEndpoint } from './ring-endpoint.js';
import { ringCorrupt } from './ring-errors.js';

/**
 * The writing side of one byte ring: copies bytes into free space, then publishes the producer
 * index (release). It owns `prod`; `cons` belongs to the other side and is never trusted.
 */
export class RingProducer extends RingEndpoint {
  /**
   * Copies up to `length` bytes of `src` from `offset` into the ring and publishes them. Returns
   * the bytes written: fewer than `length` when the ring fills up, 0 when it is full. Throws
   * `ERR_RING_CORRUPT` (writing nothing) when the indices are inconsistent.
   */
  write(src: Uint8Array, offset = 0, length: number = src.length - offset): number {
    checkSpan('write', src, offset, length);
    const nativeRing = this.nativeRing;
    if (nativeRing !== null && length >= this.nativeThreshold) {
      // The addon checks that the page is still attached (RING_DETACHED otherwise).
      const n = nativeRing.write(nativeRing.handle, src, offset, length);
      if (n < 0) throw this.nativeFailure(n);
      return n;
    }
    this.assertAttached();
    const words = this.words;
    // The other side's index: loaded once, with acquire (Atomics are sequentially consistent),
    // so its reads of the space we are about to reuse are complete.
    const cons = Atomics.load(words, this.consWord);
    const prod = words[this.prodWord]!;
    const queued = (prod - cons) >>> 0;
    const size = this.size;
    if (queued > size) throw ringCorrupt(this.layout, prod, cons);
    const free = size - queued;
    const n = length < free ? length : free;
    if (n === 0) return 0;
    const bytes = this.bytes;
    const start = prod & this.mask;
    const at = this.dataOffset + start;
    const first = size - start;
    if (n <= 16) {
      // Tiny writes: a loop beats creating subarray views.
      if (n <= first) {
        for (let i = 0; i < n; i++) bytes[at + i] = src[offset + i]!;
      } else {
        for (let i = 0; i < first; i++) bytes[at + i] = src[offset + i]!;
        const base = this.dataOffset - first;
        for (let i = first; i < n; i++) bytes[base + i] = src[offset + i]!;
      }
    } else if (n <= first) {
      bytes.set(src.subarray(offset, offset + n), at);
    } else {
      bytes.set(src.subarray(offset, offset + first), at);
      bytes.set(src.subarray(offset + first, offset + n), this.dataOffset);
    }
    // Publish with release: the bytes above are visible before the new index.
    Atomics.store(words, this.prodWord, (prod + n) >>> 0);
    return n;
  }
}
