export { hostSocketPath, SimHostClient, serveHostControl } from './control.js';
export { openGuest, type SimGuest } from './guest.js';
export {
  CONSOLE_LIMIT,
  type CreateDomainOptions,
  GNTTAB_RESERVED_CONSOLE,
  GNTTAB_RESERVED_XENSTORE,
  type GuestStartInfo,
  type SimDomain,
  SimHost,
  type SimHostEvents,
  type SimHostOptions,
  startSimHost,
} from './host.js';
export { PortSignals } from './port-signals.js';
