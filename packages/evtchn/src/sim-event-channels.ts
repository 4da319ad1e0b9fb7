import { EventChannelsBase } from './event-channels-base.js';
import { backendError, checkInteger, EvtchnCode, EvtchnError, MAX_DOMID } from './evtchn-errors.js';
import { SoftMask } from './soft-mask.js';

/**
 * What this backend needs of `@xencons/sim-hypervisor`'s `SimEventHandle` (one open of the
 * simulated evtchn device): raw deliveries of every pending bit it consumed, without masking.
 */
export interface SimEventHandleLike {
  allocUnbound(remoteDomid: number): Promise<number>;
  bindInterdomain(remoteDomid: number, remotePort: number): Promise<number>;
  attach(port: number): Promise<void>;
  unbind(port: number): Promise<void>;
  notify(port: number): void;
  onPending: ((ports: number[]) => void) | null | undefined;
  ref(): void;
  unref(): void;
  close(): Promise<void>;
}

/** What this backend needs of a `HypervisorClient` (a connection to the simulated host). */
export interface SimHypervisorLike {
  readonly domid: number;
  openEventHandle(): Promise<SimEventHandleLike>;
  on(event: 'close', listener: () => void): unknown;
  off?(event: 'close', listener: () => void): unknown;
  close?(): unknown;
}

export interface SimEventChannelsOptions {
  /** Close `hc` when the handle closes (the handle made the connection for itself). */
  readonly ownsConnection?: boolean;
}

/**
 * Event channels on the simulated host. Notifications travel peer to peer (shared pending bits
 * and a doorbell per handle, see `@xencons/sim-hypervisor`); the simulated host reports every
 * pending port it consumed, and {@link SoftMask} turns that into Linux's delivery.
 */
export class SimEventChannels extends EventChannelsBase {
  readonly backend = 'sim' as const;
  /** Our domain on the simulated host. */
  readonly domid: number;
  readonly #handle: SimEventHandleLike;
  readonly #mask: SoftMask;
  readonly #hc: SimHypervisorLike;
  readonly #onHostClose: () => void;
  readonly #ownsConnection: boolean;

  constructor(
    hc: SimHypervisorLike,
    handle: SimEventHandleLike,
    options: SimEventChannelsOptions = {},
  ) {
    super();
    this.#ownsConnection = options.ownsConnection === true;
    this.domid = hc.domid;
    this.#hc = hc;
    this.#handle = handle;
    this.#mask = new SoftMask((port) => this.deliver(port));
    handle.onPending = (ports) => {
      for (const port of ports) this.#mask.fire(port);
    };
    this.#onHostClose = () =>
      this.fail(
        new EvtchnError(EvtchnCode.CLOSED, 'the connection to the simulated host was lost', {
          details: { domid: this.domid },
        }),
      );
    hc.on('close', this.#onHostClose);
  }

  /**
   * Takes over a port of our domain that the toolstack allocated for us (e.g. the primary
   * console's, `console/port`), as a guest kernel owns its start-info port.
   */
  async attach(port: number): Promise<number> {
    checkInteger('port', port, 0, 0xffffffff);
    return this.bindWith(`attach(${port})`, { port }, async () => {
      await this.#handle.attach(port);
      return port;
    });
  }

  protected doAllocUnbound(remoteDomid: number): Promise<number> {
    return this.#handle.allocUnbound(remoteDomid);
  }

  protected doBindInterdomain(remoteDomid: number, remotePort: number): Promise<number> {
    return this.#handle.bindInterdomain(remoteDomid, remotePort);
  }

  protected override onBound(port: number): void {
    this.#mask.add(port);
  }

  protected doNotify(port: number): void {
    this.#handle.notify(port);
  }

  protected doUnmask(port: number): void {
    this.#mask.unmask(port);
  }

  protected async doUnbind(port: number): Promise<void> {
    this.#mask.remove(port);
    await this.#handle.unbind(port);
  }

  protected async doClose(): Promise<void> {
    this.#mask.clear();
    this.#handle.onPending = null;
    this.#hc.off?.('close', this.#onHostClose);
    try {
      await this.#handle.close();
    } finally {
      if (this.#ownsConnection) this.#hc.close?.();
    }
  }

  ref(): void {
    if (!this.closed) this.#handle.ref();
  }

  unref(): void {
    if (!this.closed) this.#handle.unref();
  }
}

/** Opens an event-channel handle on the simulated host through the connection `hc`. */
export async function openSimEventChannels(
  hc: SimHypervisorLike,
  options: SimEventChannelsOptions = {},
): Promise<SimEventChannels> {
  checkInteger('domid', hc.domid, 0, MAX_DOMID);
  let handle: SimEventHandleLike;
  try {
    handle = await hc.openEventHandle();
  } catch (err) {
    if (options.ownsConnection) hc.close?.();
    throw backendError('opening a simulated event-channel handle', err);
  }
  return new SimEventChannels(hc, handle, options);
}
