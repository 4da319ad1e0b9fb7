import { XenconsError, type XenconsErrorOptions } from '@xencons/errors';

/**
 * The stable codes of {@link EvtchnError}. Both backends map their failures onto these, so code
 * that branches on `err.code` runs unchanged on real Xen and on the simulated host.
 */
export const EvtchnCode = {
  /** notify / unmask / unbind of a port that is not bound through this handle (Linux ENOTCONN). */
  NOT_BOUND: 'ERR_EVTCHN_NOT_BOUND',
  /** The handle was closed (or failed and closed itself). */
  CLOSED: 'ERR_EVTCHN_CLOSED',
  /** No backend here: no `/dev/xen/evtchn` and no simulated host, or the native addon is missing. */
  UNAVAILABLE: 'ERR_EVTCHN_UNAVAILABLE',
  /** bindInterdomain: the remote port is not an unbound port offered to our domain (EINVAL). */
  BAD_PORT: 'ERR_EVTCHN_BAD_PORT',
  /** The remote domain does not exist (ESRCH). */
  NO_DOMAIN: 'ERR_EVTCHN_NO_DOMAIN',
  /** Refused by the hypervisor or its security policy (EPERM, EACCES). */
  DENIED: 'ERR_EVTCHN_DENIED',
  /** No free port left in the domain's table (ENOSPC). */
  NO_SPACE: 'ERR_EVTCHN_NO_SPACE',
  /** Any other failure of the backend (the errno is in `details.errno`, the original in `cause`). */
  BACKEND: 'ERR_EVTCHN_BACKEND',
} as const;
export type EvtchnCode = (typeof EvtchnCode)[keyof typeof EvtchnCode];

/** An event-channel failure; branch on `code` ({@link EvtchnCode}), never on the message. */
export class EvtchnError extends XenconsError {
  override readonly name: string = 'EvtchnError';
  declare readonly code: EvtchnCode;

  constructor(code: EvtchnCode, message: string, options: XenconsErrorOptions = {}) {
    super(code, message, options);
  }
}

export function notBound(op: string, port: number): EvtchnError {
  return new EvtchnError(
    EvtchnCode.NOT_BOUND,
    `${op}: port ${port} is not bound through this event-channel handle`,
    { details: { op, port } },
  );
}

export function closedError(op: string): EvtchnError {
  return new EvtchnError(EvtchnCode.CLOSED, `${op}: the event-channel handle is closed`, {
    details: { op },
  });
}

/** The errno name carried by a native or simulated-host error, if any. */
function errnoOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

const BIND_CODES: Readonly<Record<string, EvtchnCode>> = {
  EINVAL: EvtchnCode.BAD_PORT,
  ESRCH: EvtchnCode.NO_DOMAIN,
  // The simulated host answers ENOENT for a domain it never had.
  ENOENT: EvtchnCode.NO_DOMAIN,
  EPERM: EvtchnCode.DENIED,
  EACCES: EvtchnCode.DENIED,
  ENOSPC: EvtchnCode.NO_SPACE,
  ENOTCONN: EvtchnCode.NOT_BOUND,
  EBADF: EvtchnCode.CLOSED,
  ECONNRESET: EvtchnCode.CLOSED,
};

/**
 * Wraps a backend failure of `op` (an errno-coded error from the native addon or the simulated
 * host) in the typed error both backends share. An EvtchnError passes through unchanged.
 */
export function backendError(
  op: string,
  err: unknown,
  details: Record<string, unknown> = {},
): EvtchnError {
  if (err instanceof EvtchnError) return err;
  const errno = errnoOf(err);
  const code = (errno !== undefined && BIND_CODES[errno]) || EvtchnCode.BACKEND;
  const what = err instanceof Error ? err.message : String(err);
  return new EvtchnError(code, `${op} failed: ${what}`, {
    cause: err,
    details: { op, errno: errno ?? null, ...details },
  });
}

/** Throws ERR_INVALID_ARG unless `value` is an integer in [min, max]. */
export function checkInteger(what: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new XenconsError('ERR_INVALID_ARG', `${what} must be an integer in [${min}, ${max}]`, {
      details: { [what]: value },
    });
  }
}

/** Domain ids a channel may name: 0 .. DOMID_FIRST_RESERVED - 1 (0x7FEF). */
export const MAX_DOMID = 0x7fef;
