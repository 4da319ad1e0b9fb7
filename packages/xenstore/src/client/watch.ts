/** One watch event: the path that changed (or the watched path, for the initial event) and the token. */
export interface XsWatchEvent {
  readonly path: string;
  readonly token: string;
}

export interface XsWatchOptions {
  /** Deliver the event the server sends right after registering (default true). */
  initial?: boolean;
  /** Called for each event instead of queueing them for the async iterator. */
  onEvent?: (event: XsWatchEvent) => void;
  /** Most events queued for the iterator; beyond it events are dropped and counted. Default 65536. */
  maxQueue?: number;
  /** Rejects the registration (and ends the watch) when it fires. */
  signal?: AbortSignal;
  /** Timeout of the WATCH request. */
  timeout?: number;
  /**
   * [Xen 4.22+, server feature WATCHDEPTH] Only report changes at most this many levels below
   * the path (`@releaseDomain` with depth 1 reports `@releaseDomain/<domid>`). A 4.17 daemon
   * refuses the third argument with EINVAL.
   */
  depth?: number;
}

interface Waiter {
  resolve(result: IteratorResult<XsWatchEvent>): void;
  reject(error: unknown): void;
}

/**
 * A registered watch. Iterate it (`for await (const ev of watch)`), or pass `onEvent`. Events are
 * queued from the moment the WATCH is sent, so none is lost between registration and iteration.
 * After a reconnection the watch is registered again and the server's initial event is delivered
 * again: treat events as hints and re-read state.
 */
export class XsWatch implements AsyncIterable<XsWatchEvent> {
  readonly path: string;
  readonly token: string;
  /** The watch depth sent with WATCH, if any. */
  readonly depth: number | undefined;
  /** Events dropped because the queue was full. */
  dropped = 0;
  #queue: XsWatchEvent[] = [];
  #head = 0;
  #waiters: Waiter[] = [];
  #ended = false;
  #error: unknown;
  readonly #maxQueue: number;
  readonly #onEvent: ((event: XsWatchEvent) => void) | undefined;
  readonly #unwatch: (watch: XsWatch) => Promise<void>;
  /** Suppress the next event for `path` (the initial one) when `initial: false`. */
  skipInitial: boolean;

  /** @internal Created by `XenstoreClient.watch`. */
  constructor(
    path: string,
    token: string,
    options: XsWatchOptions,
    unwatch: (watch: XsWatch) => Promise<void>,
  ) {
    this.path = path;
    this.token = token;
    this.depth = options.depth;
    this.#maxQueue = options.maxQueue ?? 65536;
    this.#onEvent = options.onEvent;
    this.#unwatch = unwatch;
    this.skipInitial = options.initial === false;
  }

  /** True once the watch was closed or its connection ended for good. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Events waiting for the iterator. */
  get queued(): number {
    return this.#queue.length - this.#head;
  }

  /** @internal Delivers one event; returns false if it was dropped. */
  deliver(event: XsWatchEvent): boolean {
    if (this.#ended) return false;
    if (this.skipInitial && event.path === this.path) {
      this.skipInitial = false;
      return true;
    }
    if (this.#onEvent !== undefined) {
      try {
        this.#onEvent(event);
      } catch (err) {
        // Like an EventEmitter listener: a throwing callback is an uncaught exception, not ours.
        queueMicrotask(() => {
          throw err;
        });
      }
      return true;
    }
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) {
      waiter.resolve({ value: event, done: false });
      return true;
    }
    if (this.queued >= this.#maxQueue) {
      this.dropped++;
      return false;
    }
    this.#queue.push(event);
    return true;
  }

  /** @internal Ends iteration: normally (`error` undefined) or with an error. */
  end(error?: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = error;
    for (const w of this.#waiters.splice(0)) {
      if (error === undefined) w.resolve({ value: undefined, done: true });
      else w.reject(error);
    }
  }

  /** Sends UNWATCH and ends the iteration; idempotent. */
  async close(): Promise<void> {
    if (this.#ended) return;
    this.end();
    this.#queue = [];
    this.#head = 0;
    await this.#unwatch(this);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** The next event (waits); `done` once the watch is closed. */
  next(): Promise<IteratorResult<XsWatchEvent>> {
    if (this.#head < this.#queue.length) {
      const value = this.#queue[this.#head++]!;
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.#ended) {
      return this.#error === undefined
        ? Promise.resolve({ value: undefined, done: true })
        : Promise.reject(this.#error);
    }
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  [Symbol.asyncIterator](): AsyncIterator<XsWatchEvent> {
    return {
      next: () => this.next(),
      return: async () => {
        await this.close();
        return { value: undefined, done: true };
      },
    };
  }
}
