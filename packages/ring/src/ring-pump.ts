import { XenconsError } from '@xencons/errors';
import {
  loadNative,
  type NativeBinding,
  PUMP_BROKEN_RX,
  PUMP_BROKEN_TX,
  PUMP_READABLE,
  PUMP_WRITABLE,
  type PumpStats,
} from '@xencons/native';
import { PageView } from './page-view.js';
import type { RingConsumer } from './ring-consumer.js';
import { ringCorrupt } from './ring-errors.js';
import type { RingProducer } from './ring-producer.js';

/** Where a pump waits for the peer's events and how it sends its own. */
export type RingPumpWake =
  | { readonly kind: 'linux'; readonly fd: number; readonly port: number }
  | {
      readonly kind: 'sim';
      readonly dir: string;
      readonly domid: number;
      readonly handle: number;
      readonly port: number;
    };

export interface RingPumpOptions {
  /** Bytes the pump may hold for the reader (power of two); default 256 KiB. */
  readonly rxCapacity?: number;
  /** Bytes the writer may queue ahead of the ring (power of two); default 128 KiB. */
  readonly txCapacity?: number;
  /**
   * How long the thread spins (re-reading the ring indices) after a pass that moved nothing,
   * before it sleeps; default 20 µs (`XENCONS_PUMP_SPIN_NS` overrides it). 0 never spins.
   */
  readonly spinNs?: number;
}

export interface RingPumpEvents {
  /** Bytes to {@link RingPump.read}: comes once after a `read` returned null. */
  readable(): void;
  /** Room to {@link RingPump.write}: comes once after a `write` took less than it was offered. */
  writable(): void;
  /** The peer wrote impossible indices; the pump stopped. `error` is `ERR_RING_CORRUPT`. */
  broken(error: XenconsError): void;
}

export const RING_PUMP_DEFAULT_SPIN_NS = 20_000;

function envSpin(): number | undefined {
  const raw = process.env.XENCONS_PUMP_SPIN_NS;
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}

/**
 * Whether a {@link RingPump} can run over `memory`: the native addon is loaded, the pump is not
 * disabled (`XENCONS_PUMP=0`) and the page is a mapping made by the addon (which the pump pins).
 */
export function ringPumpSupported(memory: ArrayBufferLike | ArrayBufferView | PageView): boolean {
  if (process.env.XENCONS_PUMP === '0') return false;
  const n = loadNative();
  if (n === null || typeof n.pumpStart !== 'function') return false;
  const buffer =
    memory instanceof PageView
      ? memory.bytes.buffer
      : ArrayBuffer.isView(memory)
        ? memory.buffer
        : memory;
  if (!(buffer instanceof ArrayBuffer)) return false;
  try {
    return n.isMapped(buffer);
  } catch {
    return false;
  }
}

/**
 * A native thread that pumps one ring pair (see `pumpStart` in `@xencons/native`): it consumes
 * `rx` into a large buffer that {@link read} hands out in batches, produces what {@link write}
 * queued into `tx`, notifies the peer after every pass that moved bytes, spins briefly when
 * nothing moves and then sleeps on the event channel. Backpressure holds both ways: a reader
 * that stops reading lets the buffer and then the ring fill; a full ring makes `write` take
 * fewer bytes.
 *
 * Call {@link stop} before the page is unmapped or the event-channel handle closed (the page
 * itself stays mapped until then even if unmapped), and {@link close} to free it.
 */
export class RingPump {
  readonly #n: NativeBinding;
  readonly #id: number;
  readonly #rx: RingConsumer;
  readonly #tx: RingProducer;
  #closed = false;
  #last: PumpStats | null = null;

  constructor(
    rx: RingConsumer,
    tx: RingProducer,
    wake: RingPumpWake,
    events: RingPumpEvents,
    options: RingPumpOptions = {},
  ) {
    const n = loadNative();
    if (n === null) {
      throw new XenconsError('ERR_NATIVE_UNAVAILABLE', 'a ring pump needs @xencons/native');
    }
    if (rx.page.bytes !== tx.page.bytes) {
      throw new XenconsError('ERR_INVALID_ARG', 'rx and tx must lie in the same page');
    }
    this.#n = n;
    this.#rx = rx;
    this.#tx = tx;
    const r = rx.layout;
    const t = tx.layout;
    const wakeWords =
      wake.kind === 'linux' ? [0, wake.fd, wake.port, 0] : [1, wake.domid, wake.handle, wake.port];
    const config = [
      options.rxCapacity ?? 256 * 1024,
      options.txCapacity ?? 128 * 1024,
      options.spinNs ?? envSpin() ?? RING_PUMP_DEFAULT_SPIN_NS,
    ];
    this.#id = n.pumpStart(
      rx.page.bytes,
      [
        r.dataOffset,
        r.size,
        r.prodOffset,
        r.consOffset,
        t.dataOffset,
        t.size,
        t.prodOffset,
        t.consOffset,
      ],
      wakeWords,
      wake.kind === 'sim' ? wake.dir : null,
      config,
      (bits) => {
        if (this.#closed) return;
        if (bits & (PUMP_BROKEN_RX | PUMP_BROKEN_TX)) {
          events.broken(this.#corruption(bits));
          return;
        }
        if (bits & PUMP_READABLE) events.readable();
        if (bits & PUMP_WRITABLE) events.writable();
      },
    );
  }

  /** Up to `max` received bytes (one new Buffer), or null when none have arrived. */
  read(max = 1 << 20): Buffer | null {
    if (this.#closed) return null;
    return this.#n.pumpRead(this.#id, max);
  }

  /**
   * Takes bytes for the ring; returns how many (0 when the ring and the queue are full). While
   * nothing is queued they go straight into the ring and the peer is notified from this thread.
   * Throws `ERR_RING_CORRUPT` (taking nothing) when the peer wrote impossible indices.
   */
  write(src: Uint8Array, offset = 0, length = src.length - offset): number {
    if (this.#closed) return 0;
    const n = this.#n.pumpWrite(this.#id, src, offset, length);
    if (n < 0) throw this.#corruption(PUMP_BROKEN_TX);
    return n;
  }

  /** What the pump did so far (the last figures once closed). */
  stats(): PumpStats {
    if (this.#closed) return this.#last ?? emptyStats();
    return this.#n.pumpStats(this.#id);
  }

  /** Stops the thread and lets go of the page (idempotent); `read` still drains the buffer. */
  stop(): void {
    if (!this.#closed) this.#n.pumpStop(this.#id);
  }

  /** Stops and frees the pump (idempotent). Unread bytes are dropped. */
  close(): void {
    if (this.#closed) return;
    this.#last = this.#n.pumpStats(this.#id);
    this.#closed = true;
    this.#n.pumpClose(this.#id);
  }

  #corruption(bits: number): XenconsError {
    const end = bits & PUMP_BROKEN_RX ? this.#rx : this.#tx;
    try {
      end.available(); // throws ERR_RING_CORRUPT with the indices as they are now
    } catch (error) {
      if (error instanceof XenconsError) return error;
    }
    const words = end.page.words;
    return ringCorrupt(
      end.layout,
      Atomics.load(words, end.layout.prodOffset >>> 2),
      Atomics.load(words, end.layout.consOffset >>> 2),
    );
  }
}

function emptyStats(): PumpStats {
  return {
    rxBuffered: 0,
    txBuffered: 0,
    bytesIn: 0,
    bytesOut: 0,
    notifies: 0,
    sleeps: 0,
    signals: 0,
    broken: 0,
    running: false,
  };
}
