import { channel } from 'node:diagnostics_channel';
import type { EventChannels, EventIteratorOptions, EvtchnBackend } from './event-channels.js';
import { EventQueue } from './event-queue.js';
import {
  backendError,
  checkInteger,
  closedError,
  type EvtchnError,
  MAX_DOMID,
  notBound,
} from './evtchn-errors.js';

/** Published when a handle fails and nobody listens through `onError` (libraries never log). */
export const evtchnErrorChannel = channel('xencons:evtchn:error');

/**
 * What both backends share: argument checks, the set of ports bound through the handle, the
 * typed errors for misuse, and the fan-out of deliveries to listeners and iterators. A backend
 * implements the `do*` hooks and calls `deliver(port)` for each delivery it decides to make
 * (masking is the backend's business: the kernel does it on Linux, the sim backend in JS).
 */
export abstract class EventChannelsBase implements EventChannels {
  abstract readonly backend: EvtchnBackend;

  protected readonly bound = new Set<number>();
  readonly #listeners = new Set<(port: number) => void>();
  readonly #errorListeners = new Set<(err: Error) => void>();
  readonly #queues = new Set<EventQueue>();
  #closed = false;
  #closing: Promise<void> | null = null;

  protected abstract doAllocUnbound(remoteDomid: number): Promise<number> | number;
  protected abstract doBindInterdomain(
    remoteDomid: number,
    remotePort: number,
  ): Promise<number> | number;
  protected abstract doNotify(port: number): void;
  protected abstract doUnmask(port: number): void;
  protected abstract doUnbind(port: number): Promise<void> | void;
  /** Releases the backend (unbinding everything it still holds). Called once. */
  protected abstract doClose(): Promise<void> | void;
  abstract ref(): void;
  abstract unref(): void;

  get ports(): ReadonlySet<number> {
    return new Set(this.bound);
  }

  get closed(): boolean {
    return this.#closed;
  }

  async allocUnbound(remoteDomid: number): Promise<number> {
    checkInteger('remoteDomid', remoteDomid, 0, MAX_DOMID);
    return this.bindWith(`allocUnbound(${remoteDomid})`, { remoteDomid }, () =>
      this.doAllocUnbound(remoteDomid),
    );
  }

  async bindInterdomain(remoteDomid: number, remotePort: number): Promise<number> {
    checkInteger('remoteDomid', remoteDomid, 0, MAX_DOMID);
    checkInteger('remotePort', remotePort, 0, 0xffffffff);
    return this.bindWith(
      `bindInterdomain(${remoteDomid}, ${remotePort})`,
      { remoteDomid, remotePort },
      () => this.doBindInterdomain(remoteDomid, remotePort),
    );
  }

  notify(port: number): void {
    if (!this.bound.has(port)) throw this.#misuse('notify', port);
    try {
      this.doNotify(port);
    } catch (err) {
      throw backendError(`notify(${port})`, err, { port });
    }
  }

  unmask(port: number): void {
    if (!this.bound.has(port)) throw this.#misuse('unmask', port);
    try {
      this.doUnmask(port);
    } catch (err) {
      throw backendError(`unmask(${port})`, err, { port });
    }
  }

  async unbind(port: number): Promise<void> {
    if (!this.bound.has(port)) throw this.#misuse('unbind', port);
    // Forget it first: a delivery still in flight for it is dropped, and a second unbind fails.
    this.bound.delete(port);
    try {
      await this.doUnbind(port);
    } catch (err) {
      throw backendError(`unbind(${port})`, err, { port });
    }
  }

  onEvent(listener: (port: number) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  onError(listener: (err: Error) => void): () => void {
    this.#errorListeners.add(listener);
    return () => this.#errorListeners.delete(listener);
  }

  events(options: EventIteratorOptions = {}): AsyncIterableIterator<number> {
    const { signal } = options;
    let onAbort: (() => void) | undefined;
    const queue = new EventQueue(() => {
      this.#queues.delete(queue);
      if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
    });
    if (this.#closed || signal?.aborted) {
      queue.end();
      return queue;
    }
    this.#queues.add(queue);
    if (signal !== undefined) {
      onAbort = () => queue.end();
      signal.addEventListener('abort', onAbort, { once: true });
    }
    return queue;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<number> {
    return this.events();
  }

  close(): Promise<void> {
    if (this.#closing === null) {
      this.#closed = true;
      this.bound.clear();
      for (const q of [...this.#queues]) q.end();
      this.#closing = Promise.resolve().then(() => this.doClose());
    }
    return this.#closing;
  }

  /** Hands one delivery of `port` to every listener and iterator (ports no longer bound are dropped). */
  protected deliver(port: number): void {
    if (!this.bound.has(port)) return;
    for (const q of this.#queues) q.push(port);
    for (const listener of this.#listeners) {
      try {
        listener(port);
      } catch (err) {
        // As a throwing event listener: reported through uncaughtException, delivery goes on.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  /** The backend failed: report `err`, end the iterators with it, and close. */
  protected fail(err: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.bound.clear();
    for (const q of [...this.#queues]) q.end(err);
    if (this.#errorListeners.size === 0) {
      if (evtchnErrorChannel.hasSubscribers)
        evtchnErrorChannel.publish({ handle: this, error: err });
    } else {
      for (const listener of this.#errorListeners) listener(err);
    }
    this.#closing = Promise.resolve()
      .then(() => this.doClose())
      .catch(() => {});
  }

  #misuse(op: string, port: number): EvtchnError {
    if (this.#closed) return closedError(op);
    checkInteger('port', port, 0, 0xffffffff);
    return notBound(op, port);
  }

  /**
   * Runs a backend bind (`fn` returns the new port) with the typed errors, and records the port.
   * If the handle was closed while the bind was in flight, the port is given back.
   */
  protected async bindWith(
    op: string,
    details: Record<string, unknown>,
    fn: () => Promise<number> | number,
  ): Promise<number> {
    if (this.#closed) throw closedError(op);
    let port: number;
    try {
      port = await fn();
    } catch (err) {
      throw backendError(op, err, details);
    }
    if (this.#closed) {
      // close() ran meanwhile: the backend's close may not have seen this port.
      await Promise.resolve()
        .then(() => this.doUnbind(port))
        .catch(() => {});
      throw closedError(op);
    }
    this.bound.add(port);
    this.onBound(port);
    return port;
  }

  /** Called once a port is recorded as bound (deliveries for it are accepted from now on). */
  protected onBound(_port: number): void {}
}
