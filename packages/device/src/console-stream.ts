import { isXenconsError } from '@xencons/errors';
import type { PumpStats } from '@xencons/native';
import {
  type RingConsumer,
  RingDuplex,
  type RingProducer,
  RingPump,
  type RingPumpOptions,
  type RingSignal,
} from '@xencons/ring';
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
  /** Ring pump tuning, when `evtchn` is a native handle (see {@link ConsoleStream}). */
  readonly pump?: RingPumpOptions;
}

/** The signal of a pumped stream: the native pump notifies and waits, JS never does. */
const PUMPED: RingSignal = { notify() {}, subscribe: () => () => {} };

/** Most bytes handed to readers in one chunk by a pumped stream. */
const PUMP_READ_MAX = 256 * 1024;

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
  /** Whether a native pump moves the bytes (see {@link ConsoleStream}). */
  readonly pumped: boolean;
  /**
   * Pumped: what the pump did (bytes it holds for readers, bytes written and not yet in the
   * ring, notifications sent, times it slept, callbacks to JS).
   */
  readonly pump?: PumpStats;
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
 * - Where the native core loads and the console's event channel is bound through a handle of its
 *   own (`EventChannels.openNativeHandle`), a native ring pump moves the bytes (`RingPump` of
 *   `@xencons/ring`): a thread that spins briefly, then sleeps on the event channel, notifies the
 *   peer itself and hands JS large batches. Otherwise the JS path does it, one event-loop turn
 *   per notification. Both keep every rule above. With the pump, a write's callback runs once
 *   its bytes are queued for the ring (at most the pump's `txCapacity` ahead of it).
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
  /** The native pump, when it moves the bytes; null on the JS path. */
  readonly #pump: RingPump | null;
  /** Pumped: the write waiting for room in the pump's queue. */
  #queued: { chunk: Uint8Array; at: number; callback: (error?: Error | null) => void } | null =
    null;

  /** @internal */
  constructor(init: ConsoleStreamInit) {
    const wake = init.evtchn.nativeWake;
    const demand = { now: () => true };
    const signal =
      wake === undefined ? PortEvents.of(init.evtchn).signal(init.port, () => demand.now()) : null;
    super({ rx: init.rx, tx: init.tx, signal: signal ?? PUMPED });
    demand.now = () => this.#wantRead || this.#pendingWrite !== null;
    if (wake === undefined) {
      this.#pump = null;
    } else {
      this.#pump = new RingPump(
        init.rx,
        init.tx,
        { ...wake, port: init.port },
        {
          readable: () => this.#drain(),
          writable: () => this.#flush(),
          broken: (error) => {
            // What the pump took before it found the indices goes out first, as on the JS path.
            this.#deliverAll();
            this.destroy(error);
          },
        },
        init.pump,
      );
      const pump = this.#pump;
      Object.defineProperty(this, 'bytesOut', {
        get: () => pump.stats().bytesOut,
        set: () => {},
        configurable: true,
        enumerable: true,
      });
    }
    this.domid = init.domid;
    this.devid = init.devid;
    this.side = init.side;
    this.port = init.port;
    this.#rx = init.rx;
    this.#tx = init.tx;
    this.#signal = signal ?? {
      port: init.port,
      ...PUMPED,
      wake() {},
      release() {},
    };
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
    const pump = this.#pump?.stats();
    return {
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      rxQueued: queued(() => this.#rx.available()),
      txQueued: queued(() => this.#tx.size - this.#tx.free()),
      pumped: this.#pump !== null,
      ...(pump === undefined ? {} : { pump }),
    };
  }

  /** Whether a native pump moves this console's bytes. */
  get pumped(): boolean {
    return this.#pump !== null;
  }

  override pump(): void {
    if (this.#state !== 'open') return;
    if (this.#pump !== null) {
      this.#drain();
      this.#flush();
      return;
    }
    super.pump();
  }

  /** Pumped: hands readers what the pump holds while they want more. */
  #drain(): void {
    const pump = this.#pump;
    if (pump === null) return;
    while (this.#wantRead && this.#state === 'open' && !this.destroyed) {
      const bytes = pump.read(PUMP_READ_MAX);
      if (bytes === null) return;
      this.bytesIn += bytes.length;
      this.push(bytes);
    }
  }

  /** Pumped: hands readers everything the pump holds, past backpressure (at most its buffer). */
  #deliverAll(): void {
    const pump = this.#pump;
    if (pump === null || this.destroyed) return;
    for (let bytes = pump.read(PUMP_READ_MAX); bytes !== null; bytes = pump.read(PUMP_READ_MAX)) {
      this.bytesIn += bytes.length;
      super.push(bytes);
    }
  }

  /** Pumped: queues the waiting write; its callback runs once all of it is queued. */
  #flush(): void {
    const pump = this.#pump;
    const w = this.#queued;
    if (pump === null || w === null || this.#state !== 'open') return;
    try {
      w.at += pump.write(w.chunk, w.at, w.chunk.length - w.at);
    } catch (error) {
      this.destroy(error as Error);
      return;
    }
    if (w.at < w.chunk.length) return; // the pump says 'writable' once there is room
    this.#queued = null;
    w.callback();
  }

  override push(chunk: unknown, encoding?: BufferEncoding): boolean {
    const more = super.push(chunk, encoding);
    if (chunk !== null) this.#wantRead = more;
    return more;
  }

  override _read(): void {
    this.#wantRead = true;
    if (this.#pump !== null) {
      this.#drain();
      return;
    }
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
    if (this.#pump !== null) {
      if (chunk.length === 0) {
        finish();
        return;
      }
      this.#queued = { chunk, at: 0, callback: finish };
      this.#flush();
      return;
    }
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
    // Before the owner unbinds the port and unmaps the page.
    this.#pump?.close();
    this.#queued = null;
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
    const pump = this.#pump;
    if (pump !== null) {
      // What the pump already took from the ring comes first.
      pump.stop();
      this.#deliverAll();
      pump.close();
      this.#queued = null;
    }
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
