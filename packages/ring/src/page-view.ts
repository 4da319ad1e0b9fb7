import { XenconsError } from '@xencons/errors';

/**
 * Memory a ring page can live in: an ArrayBuffer or SharedArrayBuffer (whole), a TypedArray or
 * DataView window of one, or a mapping returned by `@xencons/native` (an ArrayBuffer).
 */
export type PageMemory = ArrayBufferLike | ArrayBufferView;

/**
 * A window of memory holding one shared page: byte access for ring data, Atomics access for the
 * 32-bit index and control words. The window must start 4-byte aligned in its buffer.
 */
export class PageView {
  /** The page's bytes (offsets in every layout are relative to `bytes[0]`). */
  readonly bytes: Uint8Array;
  /** The page's aligned u32 words, for Atomics; word `i` is bytes `4i..4i+3`. */
  readonly words: Uint32Array;

  constructor(memory: PageMemory) {
    let buffer: ArrayBufferLike;
    let byteOffset = 0;
    let byteLength: number;
    if (ArrayBuffer.isView(memory)) {
      buffer = memory.buffer;
      byteOffset = memory.byteOffset;
      byteLength = memory.byteLength;
    } else if (isArrayBufferLike(memory)) {
      buffer = memory;
      byteLength = memory.byteLength;
    } else {
      throw new XenconsError(
        'ERR_INVALID_ARG',
        'a page must be an ArrayBuffer, a SharedArrayBuffer or a view of one',
      );
    }
    if (byteOffset % 4 !== 0) {
      throw new XenconsError(
        'ERR_INVALID_ARG',
        `a page must start 4-byte aligned in its buffer (byteOffset ${byteOffset})`,
        { details: { byteOffset } },
      );
    }
    this.bytes = new Uint8Array(buffer, byteOffset, byteLength);
    this.words = new Uint32Array(buffer, byteOffset, byteLength >>> 2);
  }

  /** Wraps `memory`, or returns it when it already is a PageView. */
  static of(memory: PageMemory | PageView): PageView {
    return memory instanceof PageView ? memory : new PageView(memory);
  }

  get byteLength(): number {
    return this.bytes.byteLength;
  }

  /** True once the underlying buffer was detached (e.g. a native mapping after `unmap()`). */
  get detached(): boolean {
    return this.bytes.byteLength === 0 && this.words.byteLength === 0;
  }

  /** Atomic (sequentially consistent, so at least acquire) load of the u32 at byte `offset`. */
  loadU32(offset: number): number {
    return Atomics.load(this.words, this.#word(offset));
  }

  /** Atomic (sequentially consistent, so at least release) store of the u32 at byte `offset`. */
  storeU32(offset: number, value: number): void {
    Atomics.store(this.words, this.#word(offset), value >>> 0);
  }

  loadU8(offset: number): number {
    return Atomics.load(this.bytes, this.#byte(offset));
  }

  storeU8(offset: number, value: number): void {
    Atomics.store(this.bytes, this.#byte(offset), value & 0xff);
  }

  #word(offset: number): number {
    if (
      !Number.isInteger(offset) ||
      offset % 4 !== 0 ||
      offset < 0 ||
      offset + 4 > this.byteLength
    ) {
      throw new XenconsError('ERR_INVALID_ARG', `no aligned u32 at page offset ${offset}`, {
        details: { offset, byteLength: this.byteLength },
      });
    }
    return offset >>> 2;
  }

  #byte(offset: number): number {
    if (!Number.isInteger(offset) || offset < 0 || offset >= this.byteLength) {
      throw new XenconsError('ERR_INVALID_ARG', `no byte at page offset ${offset}`, {
        details: { offset, byteLength: this.byteLength },
      });
    }
    return offset;
  }
}

function isArrayBufferLike(value: unknown): value is ArrayBufferLike {
  // The tag, not instanceof, so buffers from another realm (vm contexts, workers) are accepted.
  const tag = Object.prototype.toString.call(value);
  return tag === '[object ArrayBuffer]' || tag === '[object SharedArrayBuffer]';
}
