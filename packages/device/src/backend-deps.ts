import type { EventChannels } from '@xencons/evtchn';
import type { Gnttab } from '@xencons/gnttab';
import type { XenstoreClient } from '@xencons/xenstore';

/** What a console backend or frontend talks through: xenstore, event channels, grants. */
export interface ConsoleDeps {
  /** A xenstore connection (dom0's for a backend, the guest's own for a frontend). */
  readonly xs: XenstoreClient;
  /** One event-channel handle; many consoles can share it. */
  readonly evtchn: EventChannels;
  /** One grant handle; many consoles can share it. */
  readonly gnttab: Gnttab;
}
