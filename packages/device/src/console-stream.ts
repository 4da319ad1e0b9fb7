import { isXenconsError } from '@xencons/errors';
import { type RingConsumer, RingDuplex, type RingProducer } from '@xencons/ring';
import { consoleLabel, DeviceCode, DeviceError } from './device-errors.js';
import { type ConsoleSide, deviceChannels } from './diagnostics.js';
import { type ConsoleEventChannels, PortEvents, type PortSignal } from './port-events.js';

/** `open` while bytes flow; `closed` once hung up (EOF); `broken` after the peer corrupted the ring. */
export type ConsoleStreamState = 'open' | 'closed' | 'broken';

/** @internal What the device code hands a stream. */
export interface ConsoleStreamInit {
  readonly domid: number;
  readonly devid: number;
  readonly side: ConsoleSide;
  /** The ring we read: `out` on the backend, `in` on the frontend. */
  readonly rx: RingConsumer;
  /** The ring we write. */
  readonly tx: RingProducer;
  readonly evtchn: ConsoleEventChannels;
  /** Our end of the event channel, bound through `evtchn`. */
  readonly port: number;
  /** Called once when the stream breaks (after the `broken` diagnostics message). */
  readonly onBroken?: (error: DeviceError) => void;
}

/** Where the bytes of a console stand right now. */
export interface ConsoleStreamStats {
  /** Bytes read from the peer's ring and pushed to readers. */
  readonly bytesIn: number;
  /** Bytes written into the peer's ring. */
  readonly bytesOut: number;
  /** Bytes waiting in the ring we read (the peer produced, nobody consumed yet); null if unknown. */
  readonly rxQueued: number | null;
  /** Bytes waiting in the ring we write (we produced, the peer has not consumed yet). */
  readonly txQueued: number | null;
}

/**
 * One console as a byte stream: on the backend, reading gives the guest's output and writing
 * feeds its input; on the frontend the other way round.
 *
 * - Flow control both ways: a reader that stops reading lets the ring fill and the peer waits; a
 *   write's callback runs once its bytes are in the ring. Nothing is dropped.
 * - Notifications follow xen-protocols.md §2.2: the peer is notified after every pass that
 *   produced or consumed bytes, and events are unmasked before the ring is looked at.
 * - The peer hanging up (closing the device, the domain going away, `close()` of the owner) ends
 *   the readable side after what was left in the ring (`'end'`); writes then fail with
 *   `ERR_CONSOLE_CLOSED`.
 * - Impossible indices from the peer destroy the stream with `ERR_CONSOLE_BROKEN` (cause:
 *   `ERR_RING_CORRUPT`) and publish a line on `xencons:device:broken`. The stream has an
 *   `'error'` listener of its own, so a hostile guest can never crash a process through an
 *   unhandled `'error'` event; add yours to learn why a stream ended (or read `state`).
 *
 * Streams are made by the device functions of this package, never directly.
 */
export class ConsoleStream extends RingDuplex {
  readonly domid: number;
  readonly devid: number;
  readonly side: ConsoleSide;
  /** Our end of the event channel. */
  readonly port: number;
  readonly #rx: RingConsumer;
  readonly #tx: RingProducer;
  readonly #signal: PortSignal;
  readonly #onBroken: ((error: DeviceError) => void) | undefined;
  #state: ConsoleStreamState = 'open';
  #wantRead = false;
  #pendingWrite: ((error?: Error | null) => void) | null = null;

  /** @internal */
  constructor(init: ConsoleStreamInit) {
    const demand = { now: () => true };
    const signal = PortEvents.of(init.evtchn).signal(init.port, () => demand.now());
    super({ rx: init.rx, tx: init.tx, signal });
    demand.now = () => this.#wantRead || this.#pendingWrite !== null;
    this.domid = init.domid;
    this.devid = init.devid;
    this.side = init.side;
    this.port = init.port;
    this.#rx = init.rx;
    this.#tx = init.tx;
    this.#signal = signal;
    this.#onBroken = init.onBroken;
    // A guest must not be able to crash the process: the error is reported on `state`, the
    // diagnostics channel and to every other 'error' listener.
    this.on('error', () => {});
  }

  get state(): ConsoleStreamState {
    return this.#state;
  }

  /** `domain 5 console 1`. */
  get label(): string {
    return consoleLabel(this.domid, this.devid);
  }

  stats(): ConsoleStreamStats {
    const queued = (f: () => number) => {
      if (this.#state !== 'open') return null;
      try {
        return f();
      } catch {
        return null;
      }
    };
    return {
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      rxQueued: queued(() => this.#rx.available()),
      txQueued: queued(() => this.#tx.size - this.#tx.free()),
    };
  }

  override pump(): void {
    if (this.#state !== 'open') return;
    super.pump();
  }

  override push(chunk: unknown, encoding?: BufferEncoding): boolean {
    const more = super.push(chunk, encoding);
    if (chunk !== null) this.#wantRead = more;
    return more;
  }

  override _read(): void {
    this.#wantRead = true;
    this.#signal.wake();
    super._read();
  }

  override _write(
    chunk: Buffer,
    encoding: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    if (this.#state !== 'open') {
      this.#failWrite(callback);
      return;
    }
    let done = false;
    const finish = (error?: Error | null) => {
      if (done) return;
      done = true;
      if (this.#pendingWrite === finish) this.#pendingWrite = null;
      callback(error);
    };
    this.#pendingWrite = finish;
    this.#signal.wake();
    super._write(chunk, encoding, finish);
  }

  override destroy(error?: Error): this {
    let reported = error;
    if (
      error !== undefined &&
      isXenconsError(error, 'ERR_RING_CORRUPT') &&
      this.#state === 'open'
    ) {
      reported = this.#markBroken(error);
    }
    return super.destroy(reported);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.#state === 'open') this.#state = 'closed';
    this.#signal.release();
    this.#pendingWrite = null;
    super._destroy(error, callback);
  }

  /**
   * @internal The console went away: stops the pump, delivers what is still in the ring (at most
   * one ring's worth, past backpressure: it would be lost otherwise), then ends the readable side.
   * Pending and later writes fail with `ERR_CONSOLE_CLOSED` once the readable side has ended.
   */
  hangup(): void {
    if (this.#state !== 'open' || this.destroyed) return;
    let moved = false;
    try {
      const chunk = new Uint8Array(this.#rx.size);
      for (let n = this.#rx.read(chunk); n > 0; n = this.#rx.read(chunk)) {
        moved = true;
        this.bytesIn += n;
        super.push(chunk.slice(0, n));
      }
    } catch (error) {
      this.destroy(error as Error);
      return;
    }
    this.#state = 'closed';
    this.#signal.release();
    if (moved) {
      try {
        this.#signal.notify();
      } catch {
        // The port is going away with the console.
      }
    }
    super.push(null);
    const pending = this.#pendingWrite;
    this.#pendingWrite = null;
    if (pending !== null) this.#failWrite(pending);
  }

  #failWrite(callback: (error?: Error | null) => void): void {
    const error = new DeviceError(
      DeviceCode.CLOSED,
      `${this.label}: the console is closed; the write did not reach the ring`,
      { details: { domid: this.domid, devid: this.devid, side: this.side } },
    );
    if (this.readableEnded || this.destroyed) callback(error);
    else this.once('end', () => callback(error));
  }

  #markBroken(cause: Error): DeviceError {
    this.#state = 'broken';
    const peer = this.side === 'backend' ? 'the guest' : 'the backend';
    const error = new DeviceError(
      DeviceCode.BROKEN,
      `${this.label}: ${peer} wrote impossible ring indices (${cause.message}); console closed`,
      {
        cause,
        details: {
          domid: this.domid,
          devid: this.devid,
          side: this.side,
          ...(isXenconsError(cause) ? cause.details : {}),
        },
      },
    );
    if (deviceChannels.broken.hasSubscribers) {
      deviceChannels.broken.publish({
        domid: this.domid,
        devid: this.devid,
        side: this.side,
        error,
        line: `${error.message}; other consoles are unaffected`,
      });
    }
    const onBroken = this.#onBroken;
    if (onBroken !== undefined) queueMicrotask(() => onBroken(error));
    return error;
  }
}
