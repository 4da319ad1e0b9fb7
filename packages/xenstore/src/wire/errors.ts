import { XenconsError } from '@xencons/errors';

/**
 * `xsd_errors[]` of xs_wire.h in array order (new errors are appended), with Linux errno numbers.
 * Reference: xen-protocols.md §1.5.
 */
export const XSD_ERRORS = [
  ['EINVAL', 22],
  ['EACCES', 13],
  ['EEXIST', 17],
  ['EISDIR', 21],
  ['ENOENT', 2],
  ['ENOMEM', 12],
  ['ENOSPC', 28],
  ['EIO', 5],
  ['ENOTEMPTY', 39],
  ['ENOSYS', 38],
  ['EROFS', 30],
  ['EBUSY', 16],
  ['EAGAIN', 11],
  ['EISCONN', 106],
  ['E2BIG', 7],
  ['EPERM', 1],
] as const;

export type XsErrorName = (typeof XSD_ERRORS)[number][0];

const BY_NAME: ReadonlyMap<string, number> = new Map(XSD_ERRORS);
const BY_NUMBER: ReadonlyMap<number, XsErrorName> = new Map(
  XSD_ERRORS.map(([name, n]) => [n, name]),
);

/** Linux errno number of an `xsd_errors` name, or `undefined`. */
export function xsErrnoNumber(name: string): number | undefined {
  return BY_NAME.get(name);
}

/** `xsd_errors` name of a Linux errno number; unknown numbers map to `EINVAL` as xenstored does. */
export function xsErrnoName(errno: number): XsErrorName {
  return BY_NUMBER.get(errno) ?? 'EINVAL';
}

export function isXsErrorName(name: string): name is XsErrorName {
  return BY_NAME.has(name);
}

/**
 * An error reply from the server (or its local equivalent, e.g. `E2BIG` for an over-size request).
 * `code` is the errno name (`ENOENT`, `EACCES`, `EAGAIN`…), `errno` its Linux number when known.
 */
export class XsError extends XenconsError {
  override readonly name = 'XsError';
  readonly errno: number | undefined;

  constructor(
    code: string,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, options);
    this.errno = xsErrnoNumber(code);
  }
}

/** The peer broke the wire protocol (over-size length, malformed payload); the connection is dead. */
export class XsProtocolError extends XenconsError {
  override readonly name = 'XsProtocolError';

  constructor(
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super('ERR_XS_PROTOCOL', message, options);
  }
}
