import type { ConsoleEventChannels } from '../port-events.js';

/**
 * Two event-channel handles in one process with Linux's delivery rules (a delivered port is
 * masked until unmasked; notifications while masked coalesce and come once more on unmask),
 * for stream tests that need no simulated host. Deliveries are asynchronous, as real ones are.
 */
export class FakeEventChannels implements ConsoleEventChannels {
  readonly #listeners = new Set<(port: number) => void>();
  readonly #peers = new Map<number, { handle: FakeEventChannels; port: number }>();
  readonly #masked = new Set<number>();
  readonly #firedWhileMasked = new Set<number>();
  /** Deliveries made, per port. */
  readonly deliveries = new Map<number, number>();
  /** unmask() calls, per port. */
  readonly unmasks = new Map<number, number>();

  /** Connects `a.port` and `b.port` as the two ends of one interdomain channel. */
  static pair(a: FakeEventChannels, aPort: number, b: FakeEventChannels, bPort: number): void {
    a.#peers.set(aPort, { handle: b, port: bPort });
    b.#peers.set(bPort, { handle: a, port: aPort });
  }

  notify(port: number): void {
    const peer = this.#peers.get(port);
    if (peer === undefined) throw new Error(`port ${port} is not bound`);
    setImmediate(() => peer.handle.#fire(peer.port));
  }

  unmask(port: number): void {
    this.unmasks.set(port, (this.unmasks.get(port) ?? 0) + 1);
    if (!this.#masked.delete(port)) return;
    if (this.#firedWhileMasked.delete(port)) setImmediate(() => this.#fire(port));
  }

  onEvent(listener: (port: number) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  isMasked(port: number): boolean {
    return this.#masked.has(port);
  }

  #fire(port: number): void {
    if (this.#masked.has(port)) {
      this.#firedWhileMasked.add(port);
      return;
    }
    this.#masked.add(port);
    this.deliveries.set(port, (this.deliveries.get(port) ?? 0) + 1);
    for (const listener of this.#listeners) listener(port);
  }
}
