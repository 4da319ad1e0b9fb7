import { XenconsError } from '@xencons/errors';
import type { EventChannels } from '@xencons/evtchn';
import type { RingSignal } from '@xencons/ring';

/** What a console needs of an event-channel handle. */
export type ConsoleEventChannels = Pick<
  EventChannels,
  'notify' | 'unmask' | 'onEvent' | 'nativeWake'
>;

interface Entry {
  handler: (() => void) | null;
  /** Whether the console wants to hear about the ring now (a reader waiting, a write pending). */
  demand: () => boolean;
  /** We left the port masked after a delivery because nobody wanted it. */
  parked: boolean;
}

/** A ring signal over one port of a shared handle, with demand-driven unmasking. */
export interface PortSignal extends RingSignal {
  readonly port: number;
  /** Unmasks the port if a delivery was left masked for lack of demand. */
  wake(): void;
  /** Stops delivering to this port's handler (idempotent). */
  release(): void;
}

/**
 * Fans one event-channel handle's deliveries out to the consoles bound through it, by port: a
 * daemon with hundreds of consoles keeps one handle and one listener.
 *
 * Delivery follows Linux (`@xencons/evtchn`): a delivered port is masked until unmasked. A
 * console that wants the event (a reader waiting for output, a write waiting for space) gets the
 * port unmasked first and then its handler, so no wake-up is lost. A console that wants nothing
 * (its reader paused: backpressure) leaves the port masked: a guest that keeps notifying costs
 * nothing until the reader resumes, when {@link PortSignal.wake} unmasks it (and a notification
 * that came meanwhile is delivered again).
 */
export class PortEvents {
  static readonly #byHandle = new WeakMap<ConsoleEventChannels, PortEvents>();

  /** The dispatcher of `evtchn` (one per handle). */
  static of(evtchn: ConsoleEventChannels): PortEvents {
    let events = PortEvents.#byHandle.get(evtchn);
    if (events === undefined) {
      events = new PortEvents(evtchn);
      PortEvents.#byHandle.set(evtchn, events);
    }
    return events;
  }

  readonly #evtchn: ConsoleEventChannels;
  readonly #entries = new Map<number, Entry>();

  private constructor(evtchn: ConsoleEventChannels) {
    this.#evtchn = evtchn;
    evtchn.onEvent((port) => this.#deliver(port));
  }

  /**
   * The signal of `port` (bound through this handle). Registering unmasks the port once, so a
   * delivery that arrived before anyone listened is not left masked forever.
   */
  signal(port: number, demand: () => boolean): PortSignal {
    if (this.#entries.has(port)) {
      throw new XenconsError('ERR_INVALID_ARG', `port ${port} already carries a console`, {
        details: { port },
      });
    }
    const entry: Entry = { handler: null, demand, parked: false };
    this.#entries.set(port, entry);
    this.#unmask(port);
    const release = () => {
      if (this.#entries.get(port) === entry) this.#entries.delete(port);
      entry.handler = null;
    };
    return {
      port,
      notify: () => this.#evtchn.notify(port),
      subscribe: (handler) => {
        entry.handler = handler;
        return () => {
          if (entry.handler === handler) entry.handler = null;
        };
      },
      wake: () => {
        if (!entry.parked || this.#entries.get(port) !== entry) return;
        entry.parked = false;
        this.#unmask(port);
      },
      release,
    };
  }

  #deliver(port: number): void {
    const entry = this.#entries.get(port);
    // Not a console's port: another user of the handle deals with it.
    if (entry === undefined) return;
    if (!entry.demand()) {
      entry.parked = true;
      return;
    }
    entry.parked = false;
    this.#unmask(port);
    entry.handler?.();
  }

  #unmask(port: number): void {
    try {
      this.#evtchn.unmask(port);
    } catch {
      // Unbound meanwhile or the handle closed: the console's owner is tearing it down.
    }
  }
}
