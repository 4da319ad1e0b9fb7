import type { EventChannels, NativeWake } from './event-channels.js';
import { EventChannelsBase } from './event-channels-base.js';
import { backendError, checkInteger, EvtchnCode, EvtchnError, MAX_DOMID } from './evtchn-errors.js';
import { SoftMask } from './soft-mask.js';

/**
 * What this backend needs of `@xencons/sim-hypervisor`'s `SimEventHandle` (one open of the
 * simulated evtchn device): raw deliveries of every pending bit it consumed, without masking.
 */
export interface SimEventHandleLike {
  readonly id?: number;
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
  /** The simulated host's folder (needed for native handles). */
  readonly dir?: string;
  openEventHandle(options?: { listen?: boolean }): Promise<SimEventHandleLike>;
  on(event: 'close', listener: () => void): unknown;
  off?(event: 'close', listener: () => void): unknown;
  close?(): unknown;
}

export interface SimEventChannelsOptions {
  /** Close `hc` when the handle closes (the handle made the connection for itself). */
  readonly ownsConnection?: boolean;
  /**
   * A handle for a native waiter: JS never reads its doorbell, `nativeWake` says where it is.
   * Needs `hc.dir` and a handle with an `id`.
   */
  readonly native?: boolean;
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
  readonly nativeWake?: NativeWake;

  constructor(
    hc: SimHypervisorLike,
    handle: SimEventHandleLike,
    options: SimEventChannelsOptions = {},
  ) {
    super();
    this.#ownsConnection = options.ownsConnection === true;
    this.domid = hc.domid;
    if (options.native === true) {
      if (hc.dir === undefined || handle.id === undefined) {
        throw new EvtchnError(
          EvtchnCode.UNAVAILABLE,
          'this simulated host cannot open native handles',
        );
      }
      this.nativeWake = { kind: 'sim', dir: hc.dir, domid: hc.domid, handle: handle.id };
    }
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

  /** Another handle on the same connection, read by a native waiter (see `nativeWake`). */
  async openNativeHandle(): Promise<EventChannels> {
    return openSimEventChannels(this.#hc, { native: true });
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
    handle = await hc.openEventHandle(options.native === true ? { listen: false } : {});
  } catch (err) {
    if (options.ownsConnection) hc.close?.();
    throw backendError('opening a simulated event-channel handle', err);
  }
  try {
    return new SimEventChannels(hc, handle, options);
  } catch (err) {
    await handle.close().catch(() => {});
    throw err;
  }
}
