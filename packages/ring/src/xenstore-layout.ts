import type { RingLayout } from './ring-layout.js';

/**
 * `struct xenstore_domain_interface` (xen/include/public/io/xs_wire.h) in its 4096-byte page.
 * `req` carries guest → server bytes, `rsp` server → guest (replies and watch events).
 */
export const XENSTORE_DOMAIN_INTERFACE = Object.freeze({
  name: 'xenstore_domain_interface',
  pageSize: 4096,
  /** `sizeof(struct xenstore_domain_interface)` up to Xen 4.20, before `evtchn_port`. */
  sizeof: 2076,
  req: Object.freeze({
    name: 'xenstore_domain_interface.req',
    dataOffset: 0,
    size: 1024,
    consOffset: 2048,
    prodOffset: 2052,
  }) satisfies RingLayout,
  rsp: Object.freeze({
    name: 'xenstore_domain_interface.rsp',
    dataOffset: 1024,
    size: 1024,
    consOffset: 2056,
    prodOffset: 2060,
  }) satisfies RingLayout,
  /** u32 bitmap of `XENSTORE_SERVER_FEATURE_*`, written by the server only; bits are never cleared. */
  serverFeaturesOffset: 2064,
  /** u32 `XENSTORE_CONNECTED` / `XENSTORE_RECONNECT`: the guest sets 1, the server sets 0. */
  connectionOffset: 2068,
  /** u32 `XENSTORE_ERROR_*`, written by the server; valid with `XENSTORE_SERVER_FEATURE_ERROR`. */
  errorOffset: 2072,
  /** [Xen 4.21+] u32 event channel filled in by Xen for dom0less/Hyperlaunch; used if non-zero. */
  evtchnPortOffset: 2076,
});

/** The xenstore ring data size (`XENSTORE_RING_SIZE`). */
export const XENSTORE_RING_SIZE = 1024;

export const XENSTORE_SERVER_FEATURE_RECONNECTION = 1;
/** The `error` field is valid. */
export const XENSTORE_SERVER_FEATURE_ERROR = 2;
/** [Xen 4.22+] watch depth. */
export const XENSTORE_SERVER_FEATURE_WATCHDEPTH = 4;
/** [Xen 4.22+] DOMID_ANY in permissions. */
export const XENSTORE_SERVER_FEATURE_DOMID_ANY = 8;

/** Values of the xenstore `connection` field. */
export const XENSTORE_CONNECTED = 0;
export const XENSTORE_RECONNECT = 1;

/** Values of the xenstore `error` field. */
export const XENSTORE_ERROR_NONE = 0;
export const XENSTORE_ERROR_COMM = 1;
export const XENSTORE_ERROR_RINGIDX = 2;
/** Protocol violation (payload too long). */
export const XENSTORE_ERROR_PROTO = 3;
