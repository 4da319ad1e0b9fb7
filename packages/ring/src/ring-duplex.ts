import { Duplex } from 'node:stream';
import type { RingConsumer } from './ring-consumer.js';
import type { RingProducer } from './ring-producer.js';

/** The event channel of a ring pair, abstracted: the Linux device or the simulator supplies it. */
export interface RingSignal {
  /** Tells the other end that bytes were produced or space was freed. */
  notify(): void;
  /** Calls `handler` whenever the other end notifies; returns an unsubscribe function. */
  subscribe(handler: () => void): () => void;
}

export interface RingDuplexOptions {
  /** The ring we read (guest output on a backend, guest input on a frontend). */
  rx: RingConsumer;
  /** The ring we write. */
  tx: RingProducer;
  signal: RingSignal;
  /** Most bytes read from `rx` into one chunk; default 4096. */
  chunkSize?: number;
}

/**
 * A byte stream over a pair of Xen rings. Reading drains `rx` while the consumer wants data and
 * stops otherwise, so a slow reader fills the ring and the peer waits: backpressure, never a drop.
 * Writing produces into `tx`; a write's callback runs once all its bytes are in the ring, so a
 * stalled peer holds back the writer the same way. Every pass that moved bytes notifies once.
 * Inconsistent indices from the peer (`ERR_RING_CORRUPT`) destroy the stream with that error and
 * touch nothing outside the ring.
 */
export class RingDuplex extends Duplex {
  readonly #rx: RingConsumer;
  readonly #tx: RingProducer;
  readonly #signal: RingSignal;
  readonly #chunkSize: number;
  readonly #unsubscribe: () => void;
  #wantRead = false;
  #writing: { chunk: Uint8Array; at: number; callback: (error?: Error | null) => void } | null =
    null;
  #pumping = false;
  #again = false;
  /** Bytes delivered to readers and produced for the peer, for diagnostics. */
  bytesIn = 0;
  bytesOut = 0;

  constructor(options: RingDuplexOptions) {
    super({ allowHalfOpen: true });
    this.#rx = options.rx;
    this.#tx = options.tx;
    this.#signal = options.signal;
    this.#chunkSize = options.chunkSize ?? 4096;
    this.#unsubscribe = this.#signal.subscribe(() => this.pump());
  }

  /** Moves what can move now; called on every notification (and safe to call any time). */
  pump(): void {
    if (this.destroyed) return;
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    let moved = false;
    try {
      do {
        this.#again = false;
        while (this.#wantRead) {
          const chunk = new Uint8Array(this.#chunkSize);
          const n = this.#rx.read(chunk);
          if (n === 0) break;
          moved = true;
          this.bytesIn += n;
          this.#wantRead = this.push(chunk.subarray(0, n));
        }
        const writing = this.#writing;
        if (writing) {
          const n = this.#tx.write(writing.chunk, writing.at);
          if (n > 0) {
            moved = true;
            this.bytesOut += n;
            writing.at += n;
          }
          if (writing.at === writing.chunk.length) {
            this.#writing = null;
            if (moved) this.#signal.notify();
            moved = false;
            writing.callback();
          }
        }
      } while (this.#again && !this.destroyed);
      if (moved) this.#signal.notify();
    } catch (error) {
      this.destroy(error as Error);
    } finally {
      this.#pumping = false;
    }
  }

  override _read(): void {
    this.#wantRead = true;
    this.pump();
  }

  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    if (chunk.length === 0) {
      callback();
      return;
    }
    this.#writing = { chunk, at: 0, callback };
    this.pump();
  }

  override _final(callback: (error?: Error | null) => void): void {
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#unsubscribe();
    this.#writing = null;
    callback(error);
  }
}
