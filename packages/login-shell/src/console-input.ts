import type { Duplex } from 'node:stream';

/**
 * Takes the reading side of a console stream and hands its bytes to one consumer at a time: the
 * login prompt, the password prompt, the size probe, then the shell session. A consumer says how
 * many bytes it used; the rest waits for the next one (typeahead), in order.
 *
 * Typeahead is bounded: bytes past `maxQueuedBytes` with no consumer are dropped (and counted),
 * so a console that floods input while nobody reads cannot grow memory without bound.
 */
export type InputSink = (chunk: Buffer) => number;

export class ConsoleInput {
  readonly #stream: Duplex;
  readonly #maxQueued: number;
  #queue: Buffer[] = [];
  #queued = 0;
  #sink: InputSink | null = null;
  #dropped = 0;
  #closed = false;
  #closeWaiters: (() => void)[] = [];
  readonly #onData = (chunk: Buffer | string) =>
    this.#deliver(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  readonly #onClose = () => this.#close();

  constructor(stream: Duplex, maxQueuedBytes = 64 * 1024) {
    this.#stream = stream;
    this.#maxQueued = maxQueuedBytes;
    stream.on('data', this.#onData);
    stream.on('end', this.#onClose);
    stream.on('close', this.#onClose);
    stream.on('error', this.#onClose);
  }

  /** True once the stream ended, closed or failed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes dropped because the typeahead queue was full. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Calls `listener` once when the stream ends, closes or fails (at once if it has); returns an unsubscribe. */
  onClose(listener: () => void): () => void {
    if (this.#closed) {
      queueMicrotask(listener);
      return () => {};
    }
    this.#closeWaiters.push(listener);
    return () => {
      const i = this.#closeWaiters.indexOf(listener);
      if (i >= 0) this.#closeWaiters.splice(i, 1);
    };
  }

  /**
   * Makes `sink` the consumer (null: nobody; input queues). Queued input goes to it first. A
   * sink that uses less than a whole chunk is finished: the rest waits for the next sink.
   */
  setSink(sink: InputSink | null): void {
    this.#sink = sink;
    while (this.#sink !== null && this.#queue.length > 0) {
      const s = this.#sink;
      const chunk = this.#queue.shift()!;
      this.#queued -= chunk.length;
      const used = Math.max(0, s(chunk));
      if (used < chunk.length) {
        const rest = chunk.subarray(used);
        this.#queue.unshift(rest);
        this.#queued += rest.length;
        if (this.#sink === s) this.#sink = null;
      }
    }
  }

  /** Puts bytes back in front of the queue (a consumer that held them back). */
  unshift(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#queue.unshift(chunk);
    this.#queued += chunk.length;
  }

  /** Discards queued typeahead (after a failed login, as login(1) flushes the tty). */
  flush(): void {
    for (const c of this.#queue) c.fill(0);
    this.#queue = [];
    this.#queued = 0;
  }

  /** Stops listening to the stream. */
  detach(): void {
    this.#stream.off('data', this.#onData);
    this.#stream.off('end', this.#onClose);
    this.#stream.off('close', this.#onClose);
    this.#stream.off('error', this.#onClose);
    this.flush();
  }

  #deliver(chunk: Buffer): void {
    if (chunk.length === 0) return;
    const sink = this.#sink;
    if (sink !== null && this.#queue.length === 0) {
      const used = Math.max(0, sink(chunk));
      if (used >= chunk.length) return;
      if (this.#sink === sink) this.#sink = null;
      // The rest of a chunk a sink started on is always kept (copied: the stream may reuse it).
      const rest = Buffer.from(chunk.subarray(used));
      this.#queue.push(rest);
      this.#queued += rest.length;
      return;
    }
    const room = this.#maxQueued - this.#queued;
    if (room <= 0) {
      this.#dropped += chunk.length;
      return;
    }
    if (chunk.length > room) {
      this.#dropped += chunk.length - room;
      chunk = chunk.subarray(0, room);
    }
    const copy = Buffer.from(chunk);
    this.#queue.push(copy);
    this.#queued += copy.length;
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#closeWaiters.splice(0)) w();
  }
}
