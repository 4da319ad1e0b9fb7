/**
 * Message type numbers of `struct xsd_sockmsg` (xen `io/xs_wire.h`, 4.17 plus the 4.21 additions).
 * Reference: xen-protocols.md §1.3.
 */
export const XsType = {
  /** Privileged, implementation-specific commands (`XS_DEBUG` before 4.9). */
  CONTROL: 0,
  DIRECTORY: 1,
  READ: 2,
  GET_PERMS: 3,
  WATCH: 4,
  UNWATCH: 5,
  TRANSACTION_START: 6,
  TRANSACTION_END: 7,
  INTRODUCE: 8,
  RELEASE: 9,
  GET_DOMAIN_PATH: 10,
  WRITE: 11,
  MKDIR: 12,
  RM: 13,
  SET_PERMS: 14,
  /** Server to client only: `path\0token\0`, req_id 0, tx_id 0. */
  WATCH_EVENT: 15,
  /** Server to client only: `ERRNO_NAME\0`. */
  ERROR: 16,
  IS_DOMAIN_INTRODUCED: 17,
  RESUME: 18,
  SET_TARGET: 19,
  /** 20 was `XS_RESTRICT`, removed in 4.9; the number is invalid. */
  RESET_WATCHES: 21,
  DIRECTORY_PART: 22,
  /** [Xen 4.21+] */
  GET_FEATURE: 23,
  /** [Xen 4.21+] */
  SET_FEATURE: 24,
  /** [Xen 4.22+] */
  GET_QUOTA: 25,
  /** [Xen 4.22+] */
  SET_QUOTA: 26,
  /** Guaranteed to remain an invalid type. */
  INVALID: 0xffff,
} as const;

export type XsTypeName = keyof typeof XsType;
export type XsType = (typeof XsType)[XsTypeName];

/** `XS_TYPE_COUNT` of the 4.17 header (types 23-26 are not in it). */
export const XS_TYPE_COUNT_4_17 = 23;
/** `XS_TYPE_COUNT` of the 4.21+ header. */
export const XS_TYPE_COUNT = 27;

/** Size of `struct xsd_sockmsg`: type, req_id, tx_id, len (u32 each, host byte order). */
export const XS_HEADER_SIZE = 16;
/** Maximum `len` of a message in both directions. */
export const XENSTORE_PAYLOAD_MAX = 4096;
/** Payload limit through Linux `/dev/xen/xenbus`: header + payload must fit in 4096 bytes. */
export const XENBUS_DEV_PAYLOAD_MAX = 4080;
/** Maximum length of an absolute path. */
export const XENSTORE_ABS_PATH_MAX = 3072;
/** Maximum length of a relative path. */
export const XENSTORE_REL_PATH_MAX = 2048;

/** Index of the path in a WATCH_EVENT payload. */
export const XS_WATCH_PATH = 0;
/** Index of the token in a WATCH_EVENT payload. */
export const XS_WATCH_TOKEN = 1;

const NAMES: ReadonlyMap<number, XsTypeName> = new Map(
  (Object.entries(XsType) as [XsTypeName, number][]).map(([name, n]) => [n, name]),
);

/** `'READ'` for 2, `'UNKNOWN(20)'` for a number that is not a type. */
export function xsTypeName(type: number): string {
  return NAMES.get(type) ?? `UNKNOWN(${type})`;
}

/** True for the numbers of {@link XsType} except `INVALID` (20 and > 26 are not types). */
export function isXsType(type: number): type is XsType {
  return type !== XsType.INVALID && NAMES.has(type);
}
