import * as fs from 'node:fs';
import * as net from 'node:net';
import type { HypervisorClient } from './client.js';
import { SimHypervisorError } from './errors.js';
import { decodeRoute, type EventFile, MAX_PORTS, PENDING_WORDS } from './event-file.js';

/**
 * One event-channel handle on the simulated host, the counterpart of one open of
 * `/dev/xen/evtchn`: the ports bound through it deliver their events here.
 *
 * Delivery is peer to peer. `notify` sets the remote port's pending bit in the remote domain's
 * event file and writes one byte to the doorbell FIFO of the handle that port is attached to;
 * this handle's doorbell wakes the event loop, and every pending bit of our ports is taken with
 * one atomic AND per word and handed to `onPending`. Raw: no masking (see @xencons/evtchn).
 */
export class SimEventHandle {
  readonly id: number;
  private listener: ((ports: number[]) => void) | null = null;
  private readonly client: HypervisorClient;
  private readonly own: EventFile;
  private readonly masks = new Int32Array(PENDING_WORDS);
  private readonly ports = new Set<number>();
  /** Null when nothing in JS reads the doorbell (a native pump does). */
  private readonly reader: net.Socket | null;
  private readonly doorbellPath: string;
  private readonly onDetach: () => void;
  private scanQueued = false;
  private closedFlag = false;

  /** @internal Made by `HypervisorClient.openEventHandle`. */
  constructor(
    client: HypervisorClient,
    id: number,
    doorbell: string,
    own: EventFile,
    onDetach: () => void,
    listen = true,
  ) {
    this.client = client;
    this.id = id;
    this.own = own;
    this.doorbellPath = doorbell;
    this.onDetach = onDetach;
    if (!listen) {
      this.reader = null;
      return;
    }
    // Read and write, so the FIFO never reports end-of-file when notifiers come and go.
    const fd = fs.openSync(doorbell, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
    this.reader = new net.Socket({ fd, readable: true, writable: false });
    this.reader.on('data', () => this.scan());
    this.reader.on('error', () => {});
  }

  /**
   * Whether this handle reads its doorbell and pending bits in JS. A handle opened with
   * `listen: false` leaves both to whoever waits natively (a ring pump of @xencons/native), and
   * never calls `onPending`.
   */
  get listening(): boolean {
    return this.reader !== null;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Receives the ports whose events arrived, ascending. Events wait (pending) until it is set. */
  get onPending(): ((ports: number[]) => void) | null {
    return this.listener;
  }

  set onPending(listener: ((ports: number[]) => void) | null) {
    this.listener = listener;
    if (listener) this.queueScan();
  }

  /** Ports currently bound or attached through this handle. */
  boundPorts(): number[] {
    return [...this.ports].sort((a, b) => a - b);
  }

  /** Allocates a port of our domain that `remoteDomid` may bind to. */
  async allocUnbound(remoteDomid: number): Promise<number> {
    const { port } = await this.client.request<{ port: number }>('evtchn.allocUnbound', {
      handle: this.id,
      remoteDomid,
    });
    this.own_(port);
    return port;
  }

  /** Binds to `remotePort` of `remoteDomid` (an unbound port allocated for us); returns our port. */
  async bindInterdomain(remoteDomid: number, remotePort: number): Promise<number> {
    const { port } = await this.client.request<{ port: number }>('evtchn.bindInterdomain', {
      handle: this.id,
      remoteDomid,
      remotePort,
    });
    this.own_(port);
    return port;
  }

  /** Receives the events of `port`, a port of our domain allocated for us by the toolstack. */
  async attach(port: number): Promise<void> {
    await this.client.request('evtchn.attach', { handle: this.id, port });
    this.own_(port);
  }

  /** Closes `port` (EVTCHNOP_close): its peer becomes unbound. */
  async unbind(port: number): Promise<void> {
    this.checkOwned(port);
    this.disown(port);
    await this.client.request('evtchn.close', { handle: this.id, port });
  }

  /**
   * Notifies the peer of `port`, synchronously. ENOTCONN when `port` is not bound through this
   * handle; a port that is bound but has no peer (unbound, or the peer closed) drops the
   * notification, as Xen does.
   */
  notify(port: number): void {
    this.checkOwned(port);
    const route = decodeRoute(this.own.route(port));
    if (!route) return;
    const remote =
      route.domid === this.client.domid ? this.own : this.client.eventFile(route.domid);
    if (!remote) return;
    remote.setPending(route.port);
    // A native waiter that is awake looks at the ring before it sleeps: no doorbell needed.
    if (remote.isPolling(route.port)) return;
    const handle = remote.attachedHandle(route.port);
    if (handle === 0) return;
    if (handle === this.id) this.queueScan();
    else this.client.doorbells.ring(handle);
  }

  /** Whether the doorbell keeps the event loop alive. */
  ref(): void {
    this.reader?.ref();
  }

  unref(): void {
    this.reader?.unref();
  }

  /** Closes every port of this handle and the handle itself. */
  async close(): Promise<void> {
    if (this.closedFlag) return;
    const id = this.id;
    this.detach();
    if (!this.client.closed)
      await this.client.request('evtchn.closeHandle', { handle: id }).catch(() => {});
  }

  /** @internal Stops listening without telling the host (its connection closed). */
  detach(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.reader?.destroy();
    this.ports.clear();
    this.masks.fill(0);
    this.onDetach();
  }

  /** The doorbell FIFO (for diagnostics). */
  get doorbell(): string {
    return this.doorbellPath;
  }

  private checkOwned(port: number): void {
    if (this.closedFlag)
      throw new SimHypervisorError('ENOTCONN', `event channel handle ${this.id} is closed`);
    if (!Number.isInteger(port) || !this.ports.has(port)) {
      throw new SimHypervisorError(
        'ENOTCONN',
        `port ${String(port)} is not bound through handle ${this.id}`,
      );
    }
  }

  private own_(port: number): void {
    if (port <= 0 || port >= MAX_PORTS) return;
    this.ports.add(port);
    this.masks[port >>> 5] = (this.masks[port >>> 5] ?? 0) | (1 << (port & 31));
    // An event that arrived before we knew the port is still pending: look now.
    this.queueScan();
  }

  private disown(port: number): void {
    this.ports.delete(port);
    this.masks[port >>> 5] = (this.masks[port >>> 5] ?? 0) & ~(1 << (port & 31));
  }

  private queueScan(): void {
    if (this.scanQueued) return;
    this.scanQueued = true;
    queueMicrotask(() => {
      this.scanQueued = false;
      this.scan();
    });
  }

  private scan(): void {
    if (this.closedFlag || this.reader === null) return;
    const ports: number[] = [];
    for (let index = 0; index < PENDING_WORDS; index++) {
      const mask = this.masks[index] ?? 0;
      if (mask === 0) continue;
      let bits = this.own.takePending(index, mask);
      while (bits !== 0) {
        const bit = 31 - Math.clz32(bits & -bits);
        bits &= bits - 1;
        ports.push(index * 32 + bit);
      }
    }
    if (ports.length === 0) return;
    if (this.listener) this.listener(ports);
    else {
      // Nobody listens yet: put the bits back so a later listener sees them.
      for (const port of ports) this.own.setPending(port);
    }
  }
}
