import { XenconsError } from '@xencons/errors';
import { RING_DETACHED } from '@xencons/native';
import {
  bindNativeRing,
  NATIVE_MAX_RING_SIZE,
  NATIVE_THRESHOLD,
  type NativeRing,
  nativeBinding,
  type RingBackend,
  requireNativeBinding,
} from './native-backend.js';
import { type PageMemory, PageView } from './page-view.js';
import { badSpan, ringCorrupt, ringDetached } from './ring-errors.js';
import { type RingLayout, validateRingLayout } from './ring-layout.js';

export interface RingOptions {
  /** `auto` (default), `ts` or `native`; see {@link RingBackend}. */
  readonly backend?: RingBackend;
  /**
   * With `backend: 'auto'`: operations of at least this many bytes use the native copy. Defaults
   * to {@link NATIVE_THRESHOLD}, measured by `pnpm bench ring`.
   */
  readonly nativeThreshold?: number;
}

/**
 * What producers and consumers share: the page, the layout checked once, the backend choice and
 * the index arithmetic. Every operation loads the other side's index exactly once and validates
 * `prod - cons` (mod 2^32) against the size before it touches the data area.
 */
export abstract class RingEndpoint {
  readonly page: PageView;
  readonly layout: RingLayout;
  /** Bytes in the data area. */
  readonly size: number;
  /** The backend asked for. */
  readonly backend: RingBackend;
  /** Operations of at least this many bytes go native (`Infinity` when they never do). */
  readonly nativeThreshold: number;

  protected readonly bytes: Uint8Array;
  protected readonly words: Uint32Array;
  protected readonly dataOffset: number;
  protected readonly mask: number;
  protected readonly prodWord: number;
  protected readonly consWord: number;
  /** The ring bound in the native addon, or null when this endpoint never copies natively. */
  protected readonly nativeRing: NativeRing | null;

  constructor(memory: PageMemory | PageView, layout: RingLayout, options: RingOptions = {}) {
    this.page = PageView.of(memory);
    validateRingLayout(layout, this.page.byteLength);
    this.layout = Object.freeze({ ...layout });
    this.size = layout.size;
    this.bytes = this.page.bytes;
    this.words = this.page.words;
    this.dataOffset = layout.dataOffset;
    this.mask = layout.size - 1;
    this.prodWord = layout.prodOffset >>> 2;
    this.consWord = layout.consOffset >>> 2;

    const backend = options.backend ?? 'auto';
    this.backend = backend;
    if (backend === 'ts') {
      this.nativeRing = null;
      this.nativeThreshold = Number.POSITIVE_INFINITY;
    } else if (backend === 'native') {
      this.nativeRing = bindNativeRing(requireNativeBinding(), this.bytes, this.layout);
      this.nativeThreshold = 0;
    } else if (backend === 'auto') {
      const threshold = options.nativeThreshold ?? NATIVE_THRESHOLD;
      if (!(threshold >= 0)) {
        throw new XenconsError('ERR_INVALID_ARG', `nativeThreshold ${threshold} must be >= 0`, {
          details: { nativeThreshold: threshold },
        });
      }
      // Bind only when some operation can go native, and only rings the addon takes (the TS
      // layout check allows 2^31 bytes, the addon 2^30); the TS copy handles the rest.
      const binding =
        threshold === Number.POSITIVE_INFINITY || layout.size > NATIVE_MAX_RING_SIZE
          ? null
          : nativeBinding();
      this.nativeRing = binding && bindNativeRing(binding, this.bytes, this.layout);
      this.nativeThreshold = this.nativeRing === null ? Number.POSITIVE_INFINITY : threshold;
    } else {
      throw new XenconsError(
        'ERR_INVALID_ARG',
        `backend must be 'auto', 'ts' or 'native', not ${String(backend)}`,
        { details: { backend } },
      );
    }
  }

  /** True when operations of `length` bytes use the native copy. */
  usesNative(length: number): boolean {
    return this.nativeRing !== null && length >= this.nativeThreshold;
  }

  /** Bytes written and not yet consumed. Throws `ERR_RING_CORRUPT` on bad indices. */
  available(): number {
    this.assertAttached();
    const words = this.words;
    const prod = Atomics.load(words, this.prodWord);
    const cons = Atomics.load(words, this.consWord);
    const queued = (prod - cons) >>> 0;
    if (queued > this.size) throw ringCorrupt(this.layout, prod, cons);
    return queued;
  }

  /** Bytes that can be written now. Throws `ERR_RING_CORRUPT` on bad indices. */
  free(): number {
    return this.size - this.available();
  }

  protected assertAttached(): void {
    if (this.words.length === 0) throw ringDetached(this.layout);
  }

  /**
   * Turns a negative native result into the typed error: RING_DETACHED (the page was unmapped
   * or its buffer detached) or RING_CORRUPT (indices re-read for the message).
   */
  protected nativeFailure(code: number): XenconsError {
    if (code === RING_DETACHED) return ringDetached(this.layout);
    return ringCorrupt(
      this.layout,
      Atomics.load(this.words, this.prodWord),
      Atomics.load(this.words, this.consWord),
    );
  }
}

/** Throws ERR_INVALID_ARG unless `offset`/`length` are a span of `buffer`. */
export function checkSpan(what: string, buffer: Uint8Array, offset: number, length: number): void {
  if (
    !Number.isInteger(offset) ||
    !Number.isInteger(length) ||
    offset < 0 ||
    length < 0 ||
    offset + length > buffer.length
  ) {
    throw badSpan(what, buffer, offset, length);
  }
}
