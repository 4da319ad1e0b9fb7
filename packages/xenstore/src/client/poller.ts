/**
 * "Spin briefly, then sleep" for an event loop (DESIGN.md): while messages stream in, the loop
 * polls (a chain of immediates: every turn still runs all ready I/O) for a short window after each
 * one instead of sleeping, so the next message is picked up without a wake-up (10-17 µs per hop
 * on the project's machines). An idle process never polls; a process that finds itself held up
 * (a turn took over a millisecond: the CPUs are busy) stops polling for 10 ms, doubling while
 * hold-ups recur, up to a second, so a busy machine is left alone.
 */
export class XsPoller {
  readonly #windowMs: number;
  readonly #wanted: () => boolean;
  #until = 0;
  #running = false;
  #last = Number.NEGATIVE_INFINITY;
  #tick = 0;
  #pausedUntil = Number.NEGATIVE_INFINITY;
  #pauseMs = 0;
  #stopped = false;
  /** Times polling paused because the process was held up. */
  pauses = 0;

  /**
   * @param windowMicros how long to poll after each message; 0 never polls.
   * @param wanted polling goes on only while this is true (e.g. a reply is awaited).
   */
  constructor(windowMicros: number, wanted: () => boolean = () => true) {
    this.#windowMs = Math.max(0, windowMicros) / 1000;
    this.#wanted = wanted;
  }

  /** True while the loop is kept polling. */
  get polling(): boolean {
    return this.#running;
  }

  /** How long (ms) polling pauses after the latest hold-up; 0 before the first. */
  get pauseMs(): number {
    return this.#pauseMs;
  }

  /**
   * A message came or went: poll for the window from now if the previous one was less than a
   * millisecond ago (a lone message costs no polling).
   */
  kick(): void {
    if (this.#windowMs === 0 || this.#stopped) return;
    const now = performance.now();
    const streaming = now - this.#last < 1;
    this.#last = now;
    if (!streaming || now < this.#pausedUntil) return;
    this.#until = now + this.#windowMs;
    if (this.#running) return;
    this.#running = true;
    this.#tick = now;
    setImmediate(this.#turn);
  }

  /** No more polling (closing). */
  stop(): void {
    this.#stopped = true;
  }

  readonly #turn = (): void => {
    const now = performance.now();
    if (now - this.#tick > 1) {
      const recurring = now - this.#pausedUntil < MAX_PAUSE_MS;
      this.#pauseMs = recurring
        ? Math.min(MAX_PAUSE_MS, Math.max(MIN_PAUSE_MS, this.#pauseMs * 2))
        : MIN_PAUSE_MS;
      this.#pausedUntil = now + this.#pauseMs;
      this.pauses++;
    }
    this.#tick = now;
    if (!this.#stopped && now < this.#until && now >= this.#pausedUntil && this.#wanted()) {
      setImmediate(this.#turn);
    } else {
      this.#running = false;
    }
  };
}

/** The first pause after a hold-up (ms), and the longest. */
const MIN_PAUSE_MS = 10;
const MAX_PAUSE_MS = 1000;

/** The default polling window of the client and the reference daemon, µs. */
export const DEFAULT_POLL_MICROS = 50;
