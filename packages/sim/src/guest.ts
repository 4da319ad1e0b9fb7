import { XenconsError } from '@xencons/errors';
import { consoleFrontendRings, RingDuplex } from '@xencons/ring';
import {
  connectHypervisor,
  type HypervisorClient,
  type SimCredentials,
  simCredentialsFromEnv,
} from '@xencons/sim-hypervisor';
import { openXenstore, ringTransport, type XenstoreClient } from '@xencons/xenstore';
import type { GuestStartInfo } from './host.js';
import { mapPage, unmapPage } from './pages.js';
import { PortSignals } from './port-signals.js';

/** The guest side of a simulated domain: what a PV guest kernel finds at boot. */
export interface SimGuest {
  readonly domid: number;
  readonly name: string;
  readonly hypervisor: HypervisorClient;
  /** The primary console, frontend side: write guest output, read dom0's input. */
  readonly console: RingDuplex;
  /** xenstore over the guest's own ring, as this domain (opened on first use). */
  xenstore(): Promise<XenstoreClient>;
  close(): void;
}

/**
 * Opens the calling process's simulated domain: from `XENCONS_SIM`, `XENCONS_SIM_DOMID` and
 * `XENCONS_SIM_TOKEN` (set by the host for every guest process) unless credentials are given.
 */
export async function openGuest(credentials?: SimCredentials): Promise<SimGuest> {
  const creds = credentials ?? simCredentialsFromEnv();
  if (!creds)
    throw new XenconsError('ERR_SIM_UNAVAILABLE', 'not a simulated guest: XENCONS_SIM is not set');
  const hypervisor = await connectHypervisor(creds);
  const pages: ArrayBuffer[] = [];
  try {
    const info = (await hypervisor.getDomainInfo()) as unknown as GuestStartInfo;
    if (!info.console || !info.xenstore) {
      throw new XenconsError('ERR_SIM_START_INFO', `domain ${hypervisor.domid} has no start info`);
    }
    const handle = await hypervisor.openEventHandle();
    const signals = new PortSignals(handle);
    const consolePage = mapPage(
      (await hypervisor.mapForeignFrames(hypervisor.domid, [info.console.frame], true)).pages[0],
    );
    pages.push(consolePage);
    await handle.attach(info.console.port);
    const rings = consoleFrontendRings(consolePage);
    const console = new RingDuplex({
      rx: rings.in,
      tx: rings.out,
      signal: signals.signal(info.console.port),
    });
    let xenstore: Promise<XenstoreClient> | undefined;
    const openStore = async () => {
      const page = mapPage(
        (await hypervisor.mapForeignFrames(hypervisor.domid, [info.xenstore.frame], true)).pages[0],
      );
      pages.push(page);
      await handle.attach(info.xenstore.port);
      const signal = signals.signal(info.xenstore.port);
      return openXenstore({
        transport: ringTransport({
          page,
          evtchn: signal,
          description: `domain ${hypervisor.domid} xenstore ring`,
        }),
      });
    };
    let closed = false;
    return {
      domid: hypervisor.domid,
      name: info.name,
      hypervisor,
      console,
      xenstore() {
        xenstore ??= openStore();
        return xenstore;
      },
      close() {
        if (closed) return;
        closed = true;
        console.destroy();
        void xenstore?.then((client) => client.close()).catch(() => {});
        hypervisor.close();
        for (const page of pages) unmapPage(page);
      },
    };
  } catch (error) {
    hypervisor.close();
    for (const page of pages) unmapPage(page);
    throw error;
  }
}
