import { openSimEventChannels, type SimEventChannels } from '@xencons/evtchn';
import { type ForeignMapping, openSimGnttab } from '@xencons/gnttab';
import { consoleFrontendRings, type PageMemory, ringPumpSupported } from '@xencons/ring';
import { connectHypervisor, simCredentialsFromEnv } from '@xencons/sim-hypervisor';
import { ConsoleStream } from './console-stream.js';
import { consoleLabel, DeviceCode, DeviceError } from './device-errors.js';
import type { ConsoleEventChannels } from './port-events.js';

export interface AttachPrimaryConsoleOptions {
  /** Our own domain. */
  readonly domid: number;
  /** The console page (`struct xencons_interface`), mapped read-write. */
  readonly page: PageMemory;
  /** The handle through which `port` is bound. */
  readonly evtchn: ConsoleEventChannels;
  /** Our end of the console's event channel (start info `console.domU.evtchn`), already bound. */
  readonly port: number;
}

/**
 * The guest's end of its primary console over a page and port it already has (what a PV kernel
 * gets from its start info): writes are console output (`out`), reads are dom0's input (`in`).
 */
export function attachPrimaryConsoleFrontend(options: AttachPrimaryConsoleOptions): ConsoleStream {
  const rings = consoleFrontendRings(options.page);
  const stream = new ConsoleStream({
    domid: options.domid,
    devid: 0,
    side: 'frontend',
    rx: rings.in,
    tx: rings.out,
    evtchn: options.evtchn,
    port: options.port,
  });
  stream.pump();
  return stream;
}

/** A simulated guest's primary console, opened from its start info. */
export interface GuestPrimaryConsole {
  readonly domid: number;
  readonly name: string;
  readonly stream: ConsoleStream;
  /** Ends the stream and releases the page, the port and the connection (final: the port closes). */
  close(): Promise<void>;
}

interface SimStartInfo {
  name?: unknown;
  console?: { frame?: unknown; port?: unknown };
}

/**
 * Opens the calling process's primary console on the simulated host, from the start info the
 * domain builder left (`XENCONS_SIM*` in `env`, set by the host for every guest process): maps
 * the console frame, takes over the console port, and returns the stream. On real Xen the
 * primary console belongs to the guest kernel (`hvc0`); `@xencons/sim`'s `openGuest().console`
 * is the same console as a plain ring stream.
 */
export async function openGuestPrimaryConsole(
  options: { env?: NodeJS.ProcessEnv } = {},
): Promise<GuestPrimaryConsole> {
  const credentials = simCredentialsFromEnv(options.env ?? process.env);
  if (credentials === null) {
    throw new DeviceError(
      DeviceCode.NOT_READY,
      'not a simulated guest: XENCONS_SIM is not set (on real Xen the primary console is the kernel’s hvc0)',
    );
  }
  const hc = await connectHypervisor(credentials);
  let evtchn: SimEventChannels | null = null;
  let mapping: ForeignMapping | null = null;
  try {
    const info = (await hc.getDomainInfo()) as SimStartInfo;
    const frame = info.console?.frame;
    const port = info.console?.port;
    if (typeof frame !== 'number' || typeof port !== 'number') {
      throw new DeviceError(
        DeviceCode.NOT_READY,
        `${consoleLabel(hc.domid, 0)}: the start info has no console`,
        { details: { domid: hc.domid } },
      );
    }
    const gnttab = openSimGnttab(hc);
    mapping = await gnttab.mapFrames(hc.domid, [frame]);
    // The console's port gets a handle read by the native pump where it can run.
    evtchn = await openSimEventChannels(hc, { native: ringPumpSupported(mapping.buffer) });
    await evtchn.attach(port);
    const stream = attachPrimaryConsoleFrontend({
      domid: hc.domid,
      page: mapping.buffer,
      evtchn,
      port,
    });
    const handle = evtchn;
    const page = mapping;
    let closing: Promise<void> | null = null;
    return {
      domid: hc.domid,
      name: typeof info.name === 'string' ? info.name : '',
      stream,
      close() {
        closing ??= (async () => {
          stream.destroy();
          await handle.close().catch(() => {});
          await page.unmap().catch(() => {});
          await gnttab.close().catch(() => {});
          hc.close();
        })();
        return closing;
      },
    };
  } catch (error) {
    await evtchn?.close().catch(() => {});
    await mapping?.unmap().catch(() => {});
    hc.close();
    throw error;
  }
}
