/**
 * Runs an async `pass` whenever kicked, never two at once: a kick during a pass runs one more
 * pass after it (kicks coalesce, as xenstore watch events do). The device state machines use it
 * to turn watch events, which are only hints, into "re-read everything and act".
 */
export class KickLoop {
  readonly #pass: () => Promise<void>;
  readonly #onError: (error: unknown) => void;
  #running: Promise<void> | null = null;
  #dirty = false;
  #stopped = false;

  constructor(pass: () => Promise<void>, onError: (error: unknown) => void) {
    this.#pass = pass;
    this.#onError = onError;
  }

  kick(): void {
    if (this.#stopped) return;
    if (this.#running !== null) {
      this.#dirty = true;
      return;
    }
    this.#running = this.#run();
  }

  /** No more passes after the current one. */
  stop(): void {
    this.#stopped = true;
  }

  /** Resolves when no pass is running. */
  async idle(): Promise<void> {
    while (this.#running !== null) await this.#running;
  }

  async #run(): Promise<void> {
    try {
      do {
        this.#dirty = false;
        try {
          await this.#pass();
        } catch (error) {
          this.#onError(error);
        }
      } while (this.#dirty && !this.#stopped);
    } finally {
      this.#running = null;
    }
  }
}
