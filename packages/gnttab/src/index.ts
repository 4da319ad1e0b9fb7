export {
  type ForeignMapping,
  GNTTAB_RESERVED_CONSOLE,
  GNTTAB_RESERVED_XENSTORE,
  type Gnttab,
  type GnttabBackend,
  type MapOptions,
  PAGE_SIZE,
  type SharedPages,
  type ShareOptions,
} from './gnttab.js';
export { GnttabCode, GnttabError, MAX_DOMID, MAX_PAGES } from './gnttab-errors.js';
export {
  LINUX_GNTTAB_DEVICES,
  type LinuxGnttabOptions,
  openLinuxGnttab,
} from './linux-gnttab.js';
export {
  mapPrimaryConsole,
  type PrimaryConsoleMapping,
  parseRingRef,
} from './primary-console.js';
export { openSimGnttab, type SimGnttabHostLike, type SimPageRef } from './sim-gnttab.js';
