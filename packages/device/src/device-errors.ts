import { XenconsError, type XenconsErrorOptions } from '@xencons/errors';

/** The stable codes of {@link DeviceError}: branch on these, never on the message. */
export const DeviceCode = {
  /** The peer wrote indices no ring allows (`ERR_RING_CORRUPT` is the `cause`): the console is dead. */
  BROKEN: 'ERR_CONSOLE_BROKEN',
  /** The console was closed (hung up by either side) before a write reached the ring. */
  CLOSED: 'ERR_CONSOLE_CLOSED',
  /** The console's nodes are not all there yet (`ring-ref`, `port`, the device directory). */
  NOT_READY: 'ERR_CONSOLE_NOT_READY',
  /** The console's `type` names another daemon (e.g. `ioemu`, QEMU's). */
  FOREIGN_TYPE: 'ERR_CONSOLE_FOREIGN_TYPE',
  /** A node holds a value that is not what the protocol says (`ring-ref=abc`, `port=-1`). */
  BAD_NODE: 'ERR_CONSOLE_BAD_NODE',
  /** Mapping the ring or binding the event channel failed (the gnttab/evtchn error is the `cause`). */
  CONNECT: 'ERR_CONSOLE_CONNECT',
  /** The other end closed or refused the connection while it was being set up. */
  REFUSED: 'ERR_CONSOLE_REFUSED',
  /** A device id the console cannot have (0 is the primary console; Linux reads only one digit). */
  DEVID: 'ERR_CONSOLE_DEVID',
  /** The device already exists (toolstack `createSecondaryConsole`). */
  EXISTS: 'ERR_CONSOLE_EXISTS',
  /** An AbortSignal ended the wait. */
  ABORTED: 'ERR_CONSOLE_ABORTED',
} as const;
export type DeviceCode = (typeof DeviceCode)[keyof typeof DeviceCode];

/** A console device failure; `details` says which domain and console (`domid`, `devid`). */
export class DeviceError extends XenconsError {
  override readonly name: string = 'DeviceError';
  declare readonly code: DeviceCode;

  constructor(code: DeviceCode, message: string, options: XenconsErrorOptions = {}) {
    super(code, message, options);
  }
}

/** `domain 5 console 0` / `domain 5 console 1`: how every message names a console. */
export function consoleLabel(domid: number, devid: number): string {
  return `domain ${domid} console ${devid}`;
}

export function abortError(what: string, signal: AbortSignal): DeviceError {
  return new DeviceError(DeviceCode.ABORTED, `${what}: aborted`, { cause: signal.reason });
}
