const ENABLED = 0;
const MASKED = 1;
/** Masked, and fired again since it was delivered. */
const MASKED_FIRED = 2;
/** Masked, with a delivery scheduled (unmask found it fired); the consumer has not seen it yet. */
const REDELIVER = 3;

/**
 * Linux's mask-until-unmasked delivery, in JS, for a backend whose raw deliveries are not masked
 * (the simulated host reports every pending bit it consumed). A port that fires while enabled is
 * masked and delivered; fires while masked are remembered as one; `unmask` of a port that fired
 * meanwhile delivers it once more (on a microtask, never from inside `unmask`), else enables it.
 */
export class SoftMask {
  readonly #state = new Map<number, number>();
  /** Ports that fired before they were tracked (the bind's answer came after the event). */
  readonly #early = new Set<number>();
  readonly #deliver: (port: number) => void;
  #redeliver: number[] = [];
  #scheduled = false;

  constructor(deliver: (port: number) => void) {
    this.#deliver = deliver;
  }

  /**
   * Starts tracking a newly bound port, enabled (as Linux binds them). If it fired before it was
   * tracked, it is delivered now.
   */
  add(port: number): void {
    this.#state.set(port, ENABLED);
    if (this.#early.delete(port)) this.fire(port);
  }

  remove(port: number): void {
    this.#state.delete(port);
  }

  clear(): void {
    this.#state.clear();
    this.#early.clear();
    this.#redeliver = [];
  }

  /** True while `port` is masked (delivered and not yet unmasked). */
  isMasked(port: number): boolean {
    const s = this.#state.get(port);
    return s !== undefined && s !== ENABLED;
  }

  /**
   * A raw event for `port`. One for a port not tracked (yet) is kept until `add(port)`: on the
   * simulated host a bind's answer and the first event travel different paths.
   */
  fire(port: number): void {
    const s = this.#state.get(port);
    if (s === undefined) {
      this.#early.add(port);
      return;
    }
    if (s === ENABLED) {
      this.#state.set(port, MASKED);
      this.#deliver(port);
    } else if (s === MASKED) {
      this.#state.set(port, MASKED_FIRED);
    }
    // MASKED_FIRED: already remembered; REDELIVER: the scheduled delivery covers it.
  }

  unmask(port: number): void {
    const s = this.#state.get(port);
    if (s === MASKED) {
      this.#state.set(port, ENABLED);
    } else if (s === MASKED_FIRED) {
      // Stays masked until the consumer unmasks the coming delivery; an unmask before that
      // delivery arrives changes nothing (it cannot cancel it).
      this.#state.set(port, REDELIVER);
      this.#redeliver.push(port);
      if (!this.#scheduled) {
        this.#scheduled = true;
        queueMicrotask(() => this.#flush());
      }
    }
  }

  #flush(): void {
    this.#scheduled = false;
    const ports = this.#redeliver;
    this.#redeliver = [];
    for (const port of ports) {
      if (this.#state.get(port) !== REDELIVER) continue; // unbound meanwhile
      this.#state.set(port, MASKED);
      this.#deliver(port);
    }
  }
}
