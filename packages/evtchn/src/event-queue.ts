/**
 * The buffer behind one `events()` iterator: ports in delivery order, each queued at most once
 * (a port delivered again before the consumer took it adds nothing, so the queue is bounded by
 * the number of ports). One consumer; `next()` calls are answered in order.
 */
export class EventQueue implements AsyncIterableIterator<number> {
  readonly #queued = new Set<number>();
  readonly #waiters: ((r: IteratorResult<number>) => void)[] = [];
  readonly #rejecters: ((err: Error) => void)[] = [];
  #ended = false;
  #error: Error | null = null;
  readonly #onReturn: () => void;

  /** `onReturn` runs once when the iteration ends for any reason (to unregister the queue). */
  constructor(onReturn: () => void) {
    this.#onReturn = onReturn;
  }

  push(port: number): void {
    if (this.#ended) return;
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) {
      this.#rejecters.shift();
      waiter({ value: port, done: false });
    } else {
      this.#queued.add(port);
    }
  }

  /** Ends the iteration after the queued ports (with `err`: they are dropped and `next` throws). */
  end(err: Error | null = null): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = err;
    if (err !== null) this.#queued.clear();
    this.#onReturn();
    const waiters = this.#waiters.splice(0);
    const rejecters = this.#rejecters.splice(0);
    if (err === null) for (const w of waiters) w({ value: undefined, done: true });
    else for (const r of rejecters) r(err);
  }

  next(): Promise<IteratorResult<number>> {
    const first = this.#queued.values().next();
    if (!first.done) {
      this.#queued.delete(first.value);
      return Promise.resolve({ value: first.value, done: false });
    }
    if (this.#ended) {
      if (this.#error !== null) {
        const err = this.#error;
        this.#error = null; // reported once; later calls see the end
        return Promise.reject(err);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => {
      this.#waiters.push(resolve);
      this.#rejecters.push(reject);
    });
  }

  return(): Promise<IteratorResult<number>> {
    this.#queued.clear();
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
