import { type PageMemory, PageView } from './page-view.js';
import { RingConsumer } from './ring-consumer.js';
import type { RingOptions } from './ring-endpoint.js';
import { RingProducer } from './ring-producer.js';
import { XENSTORE_DOMAIN_INTERFACE as XS } from './xenstore-layout.js';

/** The u32 control words of a xenstore page, read and written with Atomics. */
export class XenstoreControl {
  readonly #page: PageView;

  constructor(memory: PageMemory | PageView) {
    this.#page = PageView.of(memory);
  }

  /** Bitmap of `XENSTORE_SERVER_FEATURE_*` (server writes; bits are never cleared). */
  get serverFeatures(): number {
    return this.#page.loadU32(XS.serverFeaturesOffset);
  }

  set serverFeatures(value: number) {
    this.#page.storeU32(XS.serverFeaturesOffset, value);
  }

  /** `XENSTORE_CONNECTED` (0, set by the server) or `XENSTORE_RECONNECT` (1, set by the guest). */
  get connection(): number {
    return this.#page.loadU32(XS.connectionOffset);
  }

  set connection(value: number) {
    this.#page.storeU32(XS.connectionOffset, value);
  }

  /** `XENSTORE_ERROR_*`, written by the server. */
  get error(): number {
    return this.#page.loadU32(XS.errorOffset);
  }

  set error(value: number) {
    this.#page.storeU32(XS.errorOffset, value);
  }

  /** [Xen 4.21+] event channel filled in by Xen (dom0less); 0 when unused. */
  get evtchnPort(): number {
    return this.#page.loadU32(XS.evtchnPortOffset);
  }

  set evtchnPort(value: number) {
    this.#page.storeU32(XS.evtchnPortOffset, value);
  }
}

/** The guest (client) side of a xenstore page: produces `req`, consumes `rsp`. */
export interface XenstoreClientRings {
  readonly page: PageView;
  readonly req: RingProducer;
  readonly rsp: RingConsumer;
  readonly control: XenstoreControl;
}

/** The server side of a xenstore page: consumes `req`, produces `rsp`. */
export interface XenstoreServerRings {
  readonly page: PageView;
  readonly req: RingConsumer;
  readonly rsp: RingProducer;
  readonly control: XenstoreControl;
}

/** Attaches to a `struct xenstore_domain_interface` page as the guest (client). */
export function xenstoreClientRings(
  memory: PageMemory | PageView,
  options: RingOptions = {},
): XenstoreClientRings {
  const page = PageView.of(memory);
  return {
    page,
    req: new RingProducer(page, XS.req, options),
    rsp: new RingConsumer(page, XS.rsp, options),
    control: new XenstoreControl(page),
  };
}

/** Attaches to a `struct xenstore_domain_interface` page as the server (xenstored). */
export function xenstoreServerRings(
  memory: PageMemory | PageView,
  options: RingOptions = {},
): XenstoreServerRings {
  const page = PageView.of(memory);
  return {
    page,
    req: new RingConsumer(page, XS.req, options),
    rsp: new RingProducer(page, XS.rsp, options),
    control: new XenstoreControl(page),
  };
}
