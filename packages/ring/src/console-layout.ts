import type { RingLayout } from './ring-layout.js';

/**
 * `struct xencons_interface` (xen/include/public/io/console.h) in its 4096-byte page. `in` carries
 * backend → guest bytes (keyboard input), `out` guest → backend (console output).
 */
export const XENCONS_INTERFACE = Object.freeze({
  name: 'xencons_interface',
  pageSize: 4096,
  /** `sizeof(struct xencons_interface)` up to Xen 4.20, before the `connection` byte. */
  sizeof: 3088,
  in: Object.freeze({
    name: 'xencons_interface.in',
    dataOffset: 0,
    size: 1024,
    consOffset: 3072,
    prodOffset: 3076,
  }) satisfies RingLayout,
  out: Object.freeze({
    name: 'xencons_interface.out',
    dataOffset: 1024,
    size: 2048,
    consOffset: 3080,
    prodOffset: 3084,
  }) satisfies RingLayout,
  /**
   * [Xen 4.21+] `uint8_t connection`: `XENCONSOLE_CONNECTED` (0, also a zeroed page) or
   * `XENCONSOLE_DISCONNECTED` (1, set by Hyperlaunch until the backend has connected). Older
   * guests ignore it.
   */
  connectionOffset: 3088,
});

/** Values of the console `connection` byte (Xen 4.21+). */
export const XENCONSOLE_CONNECTED = 0;
export const XENCONSOLE_DISCONNECTED = 1;
