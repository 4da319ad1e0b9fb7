import { XenconsError } from '@xencons/errors';

/** Client-side error codes (server errors use the errno name as code, see {@link XsError}). */
export const XsClientErrorCode = {
  /** The request got no reply within its timeout. */
  TIMEOUT: 'ERR_XS_TIMEOUT',
  /** The request's AbortSignal fired. */
  ABORTED: 'ERR_XS_ABORTED',
  /** The connection closed (by `close()`, or lost) before the reply arrived. */
  CLOSED: 'ERR_XS_CLOSED',
  /** Too many requests in flight; rejected without being sent. */
  PENDING_LIMIT: 'ERR_XS_PENDING_LIMIT',
  /** An operation on a transaction that already ended. */
  TX_FINISHED: 'ERR_XS_TX_FINISHED',
} as const;

export function clientError(
  code: (typeof XsClientErrorCode)[keyof typeof XsClientErrorCode],
  message: string,
  details: Record<string, unknown> = {},
  cause?: unknown,
): XenconsError {
  return new XenconsError(code, message, { details, ...(cause === undefined ? {} : { cause }) });
}
