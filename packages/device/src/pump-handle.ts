import type { EventChannels } from '@xencons/evtchn';
import { type PageMemory, ringPumpSupported } from '@xencons/ring';

/**
 * A handle of the console's own for its native ring pump, or null when the pump cannot serve it
 * (no native core, `XENCONS_PUMP=0`, a page the addon did not map, a backend without native
 * handles, or opening one failed): the console then shares `evtchn` and uses the JS path.
 */
export async function openPumpHandle(
  evtchn: Pick<EventChannels, 'openNativeHandle'>,
  page: PageMemory,
): Promise<EventChannels | null> {
  if (evtchn.openNativeHandle === undefined || !ringPumpSupported(page)) return null;
  try {
    return await evtchn.openNativeHandle();
  } catch {
    return null;
  }
}
