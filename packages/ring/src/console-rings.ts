import { XENCONS_INTERFACE } from './console-layout.js';
import { type PageMemory, PageView } from './page-view.js';
import { RingConsumer } from './ring-consumer.js';
import type { RingOptions } from './ring-endpoint.js';
import { RingProducer } from './ring-producer.js';

/** The `connection` byte of a console page (Xen 4.21+; 0 on a zeroed page). */
export class ConsoleControl {
  readonly #page: PageView;

  constructor(memory: PageMemory | PageView) {
    this.#page = PageView.of(memory);
  }

  /**
   * `XENCONSOLE_CONNECTED` (0) or `XENCONSOLE_DISCONNECTED` (1). Throws `ERR_INVALID_ARG` on a
   * page too short to hold the byte (a bare 4.17 struct).
   */
  get connection(): number {
    return this.#page.loadU8(XENCONS_INTERFACE.connectionOffset);
  }

  set connection(value: number) {
    this.#page.storeU8(XENCONS_INTERFACE.connectionOffset, value);
  }
}

/** The guest side of a console page: produces `out` (console output), consumes `in` (input). */
export interface ConsoleFrontendRings {
  readonly page: PageView;
  readonly out: RingProducer;
  readonly in: RingConsumer;
  readonly control: ConsoleControl;
}

/** The dom0 side of a console page: consumes `out` (guest output), produces `in` (input). */
export interface ConsoleBackendRings {
  readonly page: PageView;
  readonly out: RingConsumer;
  readonly in: RingProducer;
  readonly control: ConsoleControl;
}

/** Attaches to a `struct xencons_interface` page as the guest (frontend). */
export function consoleFrontendRings(
  memory: PageMemory | PageView,
  options: RingOptions = {},
): ConsoleFrontendRings {
  const page = PageView.of(memory);
  return {
    page,
    out: new RingProducer(page, XENCONS_INTERFACE.out, options),
    in: new RingConsumer(page, XENCONS_INTERFACE.in, options),
    control: new ConsoleControl(page),
  };
}

/** Attaches to a `struct xencons_interface` page as the backend (dom0, console daemon). */
export function consoleBackendRings(
  memory: PageMemory | PageView,
  options: RingOptions = {},
): ConsoleBackendRings {
  const page = PageView.of(memory);
  return {
    page,
    out: new RingConsumer(page, XENCONS_INTERFACE.out, options),
    in: new RingProducer(page, XENCONS_INTERFACE.in, options),
    control: new ConsoleControl(page),
  };
}
