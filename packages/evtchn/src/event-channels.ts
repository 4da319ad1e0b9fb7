/** Which world a handle talks to. */
export type EvtchnBackend = 'linux' | 'sim';

/**
 * What a native waiter (the ring pump of `@xencons/native`) needs to wait for and send events
 * of a handle on its own: the Linux device's fd, or the simulated host's folder, our domain and
 * the handle id (its doorbell FIFO and our event file).
 */
export type NativeWake =
  | { readonly kind: 'linux'; readonly fd: number }
  | { readonly kind: 'sim'; readonly dir: string; readonly domid: number; readonly handle: number };

export interface EventIteratorOptions {
  /** Ends the iteration (the pending `next()` resolves `done`) when aborted. */
  readonly signal?: AbortSignal;
}

/**
 * One open of the event-channel device: like a file descriptor of Linux `/dev/xen/evtchn`, on
 * real Xen or on the simulated host. Ports are this domain's event-channel numbers; they belong
 * to the handle that bound them, and closing the handle unbinds them all.
 *
 * Delivery follows Linux: when a port fires it is **masked** and delivered once (to every
 * listener and iterator). Further notifications while it is masked are not lost and not
 * repeated: they coalesce, and the port is delivered once more right after `unmask(port)`. So a
 * consumer that unmasks *before* it looks at the shared ring never misses a wake-up:
 *
 * ```ts
 * for await (const port of channels) { channels.unmask(port); drainRing(); }
 * ```
 */
export interface EventChannels {
  readonly backend: EvtchnBackend;
  /** The ports bound through this handle (a copy). */
  readonly ports: ReadonlySet<number>;
  readonly closed: boolean;

  /** A fresh port in our domain that `remoteDomid` may bind to (EVTCHNOP_alloc_unbound). */
  allocUnbound(remoteDomid: number): Promise<number>;
  /** Connects to `remotePort` of `remoteDomid`, which must be unbound and offered to our domain. */
  bindInterdomain(remoteDomid: number, remotePort: number): Promise<number>;
  /**
   * Signals the remote end of `port`. Synchronous and cheap (the hot path). A connected port
   * whose peer has gone is silently dropped, as Xen does. Throws `ERR_EVTCHN_NOT_BOUND` for a
   * port not bound through this handle.
   */
  notify(port: number): void;
  /**
   * Re-enables delivery of `port` after an event masked it. If it fired while masked, it is
   * delivered once more soon after. Unmasking an unmasked port does nothing.
   */
  unmask(port: number): void;
  /** Closes `port` (EVTCHNOP_close): the remote end becomes unbound. */
  unbind(port: number): Promise<void>;

  /** Calls `listener(port)` for every delivery; returns a function that removes it. */
  onEvent(listener: (port: number) => void): () => void;
  /**
   * Calls `listener(err)` when the handle fails (e.g. the simulated host went away); the handle
   * is closed afterwards. Returns a function that removes it.
   */
  onError(listener: (err: Error) => void): () => void;
  /**
   * Deliveries as an async iterator. Each iterator sees every delivery made after it was
   * created; a port delivered again before the iterator took it is queued once. Ends when the
   * handle closes or `signal` aborts; throws the handle's error if it fails.
   */
  events(options?: EventIteratorOptions): AsyncIterableIterator<number>;
  [Symbol.asyncIterator](): AsyncIterableIterator<number>;

  /**
   * Set on a handle opened by {@link EventChannels.openNativeHandle}: nothing in JS reads its
   * deliveries (no `onEvent` calls, no iterator items); a native waiter does, with this.
   */
  readonly nativeWake?: NativeWake;
  /**
   * Opens another handle in the same world whose deliveries nobody reads in JS, for a native
   * waiter (see {@link NativeWake}); bind ports through it as usual and close it when done.
   * Absent when the backend cannot.
   */
  openNativeHandle?(): Promise<EventChannels>;

  /** Lets the process exit while this handle is open (it keeps the event loop alive by default). */
  unref(): void;
  ref(): void;
  /** Unbinds every port and releases the handle. Idempotent. Iterators end. */
  close(): Promise<void>;
}
