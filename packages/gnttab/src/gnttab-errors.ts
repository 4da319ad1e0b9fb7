import { XenconsError, type XenconsErrorOptions } from '@xencons/errors';

/**
 * The stable codes of {@link GnttabError}. Both backends map their failures onto these, so code
 * that branches on `err.code` runs unchanged on real Xen and on the simulated host.
 */
export const GnttabCode = {
  /**
   * map: the grant does not let this domain map it. It was granted to another domain, never
   * existed, or was ended. Xen answers all of these alike (`GNTST_general_error`, or
   * `GNTST_bad_gntref` past the end of the table) and Linux gntdev turns every failed grant into
   * EINVAL from `mmap`, so real Xen cannot tell them apart; the simulated host says which in
   * `details.reason` (`'other-domain'` or `'no-grant'`).
   */
  NO_ACCESS: 'ERR_GNTTAB_NO_ACCESS',
  /** map: a writable mapping of a grant the granter made read-only. Map it with `writable: false`. */
  READ_ONLY: 'ERR_GNTTAB_READ_ONLY',
  /** mapFrames: only a privileged domain (dom0, as root on Linux) may map another domain's frames. */
  NOT_PRIVILEGED: 'ERR_GNTTAB_NOT_PRIVILEGED',
  /** mapFrames: the domain has no such frame, or there is no such domain. */
  BAD_FRAME: 'ERR_GNTTAB_BAD_FRAME',
  /** share / map: out of grant references or mappable pages (gntalloc / gntdev limits). */
  NO_SPACE: 'ERR_GNTTAB_NO_SPACE',
  /**
   * map / mapFrames on the simulated host: the pages lie in different page files, so they cannot
   * be one contiguous view. Map them one at a time.
   */
  NOT_CONTIGUOUS: 'ERR_GNTTAB_NOT_CONTIGUOUS',
  /** The handle was closed (or its connection to the simulated host was lost). */
  CLOSED: 'ERR_GNTTAB_CLOSED',
  /** No backend here: no `/dev/xen` device, or the native addon is missing. */
  UNAVAILABLE: 'ERR_GNTTAB_UNAVAILABLE',
  /** Any other failure of the backend (the errno in `details.errno`, the original in `cause`). */
  BACKEND: 'ERR_GNTTAB_BACKEND',
} as const;
export type GnttabCode = (typeof GnttabCode)[keyof typeof GnttabCode];

/** A grant-table failure; branch on `code` ({@link GnttabCode}), never on the message. */
export class GnttabError extends XenconsError {
  override readonly name: string = 'GnttabError';
  declare readonly code: GnttabCode;

  constructor(code: GnttabCode, message: string, options: XenconsErrorOptions = {}) {
    super(code, message, options);
  }
}

export function closedError(op: string): GnttabError {
  return new GnttabError(GnttabCode.CLOSED, `${op}: the grant-table handle is closed`, {
    details: { op },
  });
}

/** The errno name carried by a native or simulated-host error, if any. */
export function errnoOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** Any other backend failure of `op`, wrapped; a GnttabError passes through unchanged. */
export function backendError(
  op: string,
  err: unknown,
  details: Record<string, unknown> = {},
  code: GnttabCode = GnttabCode.BACKEND,
): GnttabError {
  if (err instanceof GnttabError) return err;
  const errno = errnoOf(err);
  const what = err instanceof Error ? err.message : String(err);
  return new GnttabError(code, `${op} failed: ${what}`, {
    cause: err,
    details: { op, errno: errno ?? null, ...details },
  });
}

/** Throws ERR_INVALID_ARG unless `value` is an integer in [min, max]. */
export function checkInteger(what: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new XenconsError('ERR_INVALID_ARG', `${what} must be an integer in [${min}, ${max}]`, {
      details: { [what]: value },
    });
  }
}

/** Throws ERR_INVALID_ARG unless `list` is a non-empty array of integers in [0, max]. */
export function checkList(what: string, list: unknown, max: number): readonly number[] {
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_PAGES) {
    throw new XenconsError('ERR_INVALID_ARG', `${what} must list 1 to ${MAX_PAGES} numbers`, {
      details: { [what]: list },
    });
  }
  list.forEach((v, i) => {
    checkInteger(`${what}[${i}]`, v, 0, max);
  });
  return list as readonly number[];
}

/** Domain ids a grant may name: 0 .. DOMID_FIRST_RESERVED - 1 (0x7FEF). */
export const MAX_DOMID = 0x7fef;
/** Grant references are 32-bit (`grant_ref_t`). */
export const MAX_REF = 0xffffffff;
/** Pages per share or mapping (the simulated host's limit; far below Linux's module limits). */
export const MAX_PAGES = 256;
