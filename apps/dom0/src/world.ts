import * as path from 'node:path';
import { type EventChannels, openEventChannels } from '@xencons/evtchn';
import { type Gnttab, openLinuxGnttab, openSimGnttab } from '@xencons/gnttab';
import {
  connectHypervisor,
  type HypervisorClient,
  simCredentialsFromEnv,
} from '@xencons/sim-hypervisor';
import { openXenstore, type XenstoreClient } from '@xencons/xenstore';

/** Where dom0 tools find Xen: the simulated host (`XENCONS_SIM`) or real Xen on Linux. */
export interface Dom0World {
  readonly kind: 'sim' | 'linux';
  /** The simulated host's folder (sim only). */
  readonly simDir: string | null;
  readonly xs: XenstoreClient;
  readonly gnttab: Gnttab;
  readonly events: EventChannels;
  close(): Promise<void>;
}

/** The simulated host's folder when `XENCONS_SIM` is set, else null. */
export function simDirFromEnv(env: Readonly<Record<string, string | undefined>>): string | null {
  return env.XENCONS_SIM ? path.resolve(env.XENCONS_SIM) : null;
}

/** Opens xenstore, grants and event channels of this dom0, in whichever world it lives. */
export async function openDom0World(
  env: Readonly<Record<string, string | undefined>>,
): Promise<Dom0World> {
  const simDir = simDirFromEnv(env);
  let hc: HypervisorClient | null = null;
  let gnttab: Gnttab;
  let xs: XenstoreClient;
  if (simDir) {
    const credentials = simCredentialsFromEnv({ ...env, XENCONS_SIM: simDir });
    if (!credentials) throw new Error('XENCONS_SIM is not set');
    hc = await connectHypervisor(credentials);
    gnttab = openSimGnttab(hc);
    xs = await openXenstore({ socketPath: path.join(simDir, 'xenstored.sock') });
  } else {
    gnttab = openLinuxGnttab({ domid: 0 });
    xs = await openXenstore();
  }
  const events = await openEventChannels({ env: { ...env } as NodeJS.ProcessEnv });
  return {
    kind: simDir ? 'sim' : 'linux',
    simDir,
    xs,
    gnttab,
    events,
    async close() {
      await events.close();
      await gnttab.close();
      xs.close();
      hc?.close();
    },
  };
}
