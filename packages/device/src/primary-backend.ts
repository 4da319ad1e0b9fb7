import type { EventChannels } from '@xencons/evtchn';
import { type ForeignMapping, mapPrimaryConsole, parseRingRef } from '@xencons/gnttab';
import { consoleBackendRings, XENCONSOLE_CONNECTED } from '@xencons/ring';
import type { ConsoleDeps } from './backend-deps.js';
import { connectError } from './connect-error.js';
import {
  type ConsoleNodes,
  DEFAULT_CONSOLE_TYPES,
  parseConsoleLimit,
  parseU32Node,
  probeConsole,
} from './console-nodes.js';
import { ConsoleStream } from './console-stream.js';
import { consoleLabel, DeviceCode, DeviceError } from './device-errors.js';
import { openPumpHandle } from './pump-handle.js';

export interface OpenPrimaryConsoleOptions extends ConsoleDeps {
  readonly domid: number;
  /** The `type` values we serve (default `xenconsoled`, `xencons`); a missing `type` is served. */
  readonly types?: readonly string[];
}

/** What the primary console's nodes said when it was opened. */
export interface PrimaryConsoleInfo {
  readonly domid: number;
  readonly devid: 0;
  /** `/local/domain/D/console`. */
  readonly frontendPath: string;
  /** Where a backend publishes its pty for `xenconsole`/`xl console`: `<frontendPath>/tty`. */
  readonly ttyPath: string;
  /** `ring-ref`: the page's frame number (not a grant ref, for the primary console). */
  readonly ringRef: number;
  /** `port`: the guest's end of the event channel. */
  readonly remotePort: number;
  /** Our end of it. */
  readonly localPort: number;
  /** `type`, undefined when absent. */
  readonly type: string | undefined;
  /**
   * `limit` in bytes: the buffer cap the toolstack asks the backend to keep (libxl: 1 MiB). null
   * when absent, 0 or not a number (then `limitNode` has the raw value): the caller picks a bound.
   */
  readonly limit: number | null;
  readonly limitNode: string | undefined;
  /** How the page was mapped: grant 0 or the `ring-ref` frame (xenconsoled's order). */
  readonly via: 'grant' | 'frame';
  /** All the nodes as read. */
  readonly nodes: ConsoleNodes;
}

export type PrimaryConsoleState = 'connected' | 'broken' | 'closed';

/**
 * dom0's end of a guest's primary console (console 0), served as xenconsoled serves it: the page
 * mapped, the event channel bound, the bytes as {@link ConsoleStream} `stream`. There is no xenbus
 * handshake for console 0; the console lives until `close()` (the daemon calls it when the
 * domain goes away or its nodes change) or until the guest corrupts the ring (`broken`: the
 * stream errors with `ERR_CONSOLE_BROKEN` and the page and port are released at once).
 */
export class PrimaryConsoleBackend {
  readonly info: PrimaryConsoleInfo;
  readonly stream: ConsoleStream;
  readonly #deps: ConsoleDeps;
  readonly #mapping: ForeignMapping;
  /** The console's own event-channel handle when a native pump serves it (else the shared one). */
  readonly #own: EventChannels | null;
  #state: PrimaryConsoleState = 'connected';
  #released: Promise<void> | null = null;

  /** @internal */
  constructor(
    deps: ConsoleDeps,
    info: Omit<PrimaryConsoleInfo, 'localPort'>,
    mapping: ForeignMapping,
    localPort: number,
    own: EventChannels | null = null,
  ) {
    this.#deps = deps;
    this.#mapping = mapping;
    this.#own = own;
    this.info = { ...info, localPort };
    const rings = consoleBackendRings(mapping.buffer);
    this.stream = new ConsoleStream({
      domid: info.domid,
      devid: 0,
      side: 'backend',
      rx: rings.out,
      tx: rings.in,
      evtchn: own ?? deps.evtchn,
      port: localPort,
      onBroken: () => {
        if (this.#state === 'connected') this.#state = 'broken';
        void this.#release();
      },
    });
    // Xen 4.21's `connection` byte: xenconsoled sets it once the page is mapped and bound.
    rings.control.connection = XENCONSOLE_CONNECTED;
    this.stream.pump();
  }

  get domid(): number {
    return this.info.domid;
  }

  /**
   * The handle `info.localPort` is bound through: the console's own when a native pump serves it
   * (closed with the console), else the shared `evtchn` it was opened with.
   */
  get evtchn(): EventChannels {
    return this.#own ?? this.#deps.evtchn;
  }

  get devid(): 0 {
    return 0;
  }

  get state(): PrimaryConsoleState {
    return this.#state;
  }

  /** `domain 5 console 0`. */
  get label(): string {
    return consoleLabel(this.info.domid, 0);
  }

  /**
   * Hangs the stream up (readers get what was left in the ring, then `'end'`), unbinds the port
   * and unmaps the page. Idempotent; never throws for a domain that is already gone.
   */
  async close(): Promise<void> {
    if (this.#state === 'connected') this.#state = 'closed';
    this.stream.hangup();
    await this.#release();
  }

  #release(): Promise<void> {
    this.#released ??= (async () => {
      try {
        // The stream (and its pump) has stopped by now: close() and onBroken come after it.
        if (this.#own !== null) await this.#own.close();
        else await this.#deps.evtchn.unbind(this.info.localPort);
      } catch {
        // Already unbound: the handle closed, or the domain's end went with the domain.
      }
      await this.#mapping.unmap().catch(() => {});
    })();
    return this.#released;
  }
}

/**
 * Opens dom0's end of domain `domid`'s primary console: reads `/local/domain/D/console/{ring-ref,
 * port,type,limit}`, refuses a console whose `type` is not ours (`ERR_CONSOLE_FOREIGN_TYPE`) or
 * whose nodes are missing (`ERR_CONSOLE_NOT_READY`) or malformed (`ERR_CONSOLE_BAD_NODE`), maps
 * the page (grant 0 first, then the frame, `@xencons/gnttab` `mapPrimaryConsole`), binds the
 * event channel, and starts the stream. Mapping or binding failures are `ERR_CONSOLE_CONNECT`
 * with the gnttab/evtchn error as `cause`.
 */
export async function openPrimaryConsoleBackend(
  options: OpenPrimaryConsoleOptions,
): Promise<PrimaryConsoleBackend> {
  const { domid } = options;
  const deps: ConsoleDeps = { xs: options.xs, evtchn: options.evtchn, gnttab: options.gnttab };
  const label = consoleLabel(domid, 0);
  const probe = await probeConsole(options.xs, domid, 0, options.types ?? DEFAULT_CONSOLE_TYPES);
  switch (probe.status) {
    case 'absent':
      throw new DeviceError(DeviceCode.NOT_READY, `${label}: no console node`, {
        details: { domid, devid: 0 },
      });
    case 'foreign':
      throw new DeviceError(
        DeviceCode.FOREIGN_TYPE,
        `${label}: type ${JSON.stringify(probe.type)} is served by another backend`,
        { details: { domid, devid: 0, type: probe.type } },
      );
    case 'not-ready':
      throw new DeviceError(
        DeviceCode.NOT_READY,
        `${label}: ring-ref and port are not written yet`,
        {
          details: { domid, devid: 0 },
        },
      );
    case 'ready':
      break;
  }
  const { nodes } = probe;
  let ringRef: number;
  let remotePort: number;
  try {
    ringRef = parseRingRef(nodes.ringRef ?? '');
  } catch (cause) {
    throw new DeviceError(
      DeviceCode.BAD_NODE,
      `${label}: ring-ref ${JSON.stringify(nodes.ringRef)} is not a frame number`,
      { cause, details: { domid, devid: 0, node: 'ring-ref', value: nodes.ringRef } },
    );
  }
  try {
    remotePort = parseU32Node('port', nodes.port ?? '');
  } catch (cause) {
    throw new DeviceError(DeviceCode.BAD_NODE, `${label}: ${(cause as Error).message}`, {
      cause,
      details: { domid, devid: 0, node: 'port', value: nodes.port },
    });
  }
  let limit: number | null = null;
  try {
    limit = parseConsoleLimit(nodes.limit);
  } catch {
    // Kept raw in limitNode; the daemon applies its own bound.
  }

  let mapped: Awaited<ReturnType<typeof mapPrimaryConsole>>;
  try {
    mapped = await mapPrimaryConsole(options.gnttab, domid, ringRef);
  } catch (cause) {
    throw connectError(label, 'map the console page', cause, { domid, ringRef });
  }
  const own = await openPumpHandle(options.evtchn, mapped.mapping.buffer);
  let localPort: number;
  try {
    localPort = await (own ?? options.evtchn).bindInterdomain(domid, remotePort);
  } catch (cause) {
    await own?.close().catch(() => {});
    await mapped.mapping.unmap().catch(() => {});
    throw connectError(label, `bind event channel ${remotePort}`, cause, { domid, remotePort });
  }
  try {
    return new PrimaryConsoleBackend(
      deps,
      {
        domid,
        devid: 0,
        frontendPath: nodes.frontendPath,
        ttyPath: `${nodes.frontendPath}/tty`,
        ringRef,
        remotePort,
        type: nodes.type,
        limit,
        limitNode: nodes.limit,
        via: mapped.via,
        nodes,
      },
      mapped.mapping,
      localPort,
      own,
    );
  } catch (cause) {
    // The pump could not start (no thread, no eventfd): give everything back.
    if (own !== null) await own.close().catch(() => {});
    else await options.evtchn.unbind(localPort).catch(() => {});
    await mapped.mapping.unmap().catch(() => {});
    throw connectError(label, 'start the console stream', cause, { domid });
  }
}
