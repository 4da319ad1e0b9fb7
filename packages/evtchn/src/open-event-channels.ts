import { connectHypervisor, simCredentialsFromEnv } from '@xencons/sim-hypervisor';
import type { EventChannels } from './event-channels.js';
import { EvtchnCode, EvtchnError } from './evtchn-errors.js';
import { openLinuxEventChannels } from './linux-event-channels.js';
import { openSimEventChannels } from './sim-event-channels.js';

export interface OpenEventChannelsOptions {
  /**
   * `auto` (default): the simulated host when `XENCONS_SIM` is set, else `/dev/xen/evtchn`.
   * `sim` or `linux` force one.
   */
  readonly backend?: 'auto' | 'sim' | 'linux';
  /** For `linux`: the device (default `/dev/xen/evtchn`). */
  readonly device?: string;
  /**
   * For `sim`: where the credentials come from (`XENCONS_SIM`, `XENCONS_SIM_DOMID`,
   * `XENCONS_SIM_TOKEN`); default `process.env`.
   */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * Opens an event-channel handle in whichever world this process lives in. On the simulated
 * host the handle makes its own connection (as its domain) and closes it on `close()`.
 */
export async function openEventChannels(
  options: OpenEventChannelsOptions = {},
): Promise<EventChannels> {
  const env = options.env ?? process.env;
  const backend = options.backend ?? 'auto';
  if (backend === 'sim' || (backend === 'auto' && env.XENCONS_SIM)) {
    let credentials: ReturnType<typeof simCredentialsFromEnv>;
    try {
      credentials = simCredentialsFromEnv(env);
    } catch (err) {
      throw new EvtchnError(EvtchnCode.UNAVAILABLE, (err as Error).message, { cause: err });
    }
    if (credentials === null) {
      throw new EvtchnError(EvtchnCode.UNAVAILABLE, 'XENCONS_SIM is not set (no simulated host)');
    }
    let hc: Awaited<ReturnType<typeof connectHypervisor>>;
    try {
      hc = await connectHypervisor(credentials);
    } catch (err) {
      throw new EvtchnError(
        EvtchnCode.UNAVAILABLE,
        `no simulated host in ${credentials.dir}: ${(err as Error).message}`,
        { cause: err, details: { dir: credentials.dir, domid: credentials.domid } },
      );
    }
    return openSimEventChannels(hc, { ownsConnection: true });
  }
  return openLinuxEventChannels(options.device === undefined ? {} : { device: options.device });
}
