import { XenconsError, type XenconsErrorOptions } from '@xencons/errors';

/** Stable codes of @xencons/login-shell errors. */
export type LoginShellErrorCode =
  /** A users file line that cannot be parsed, or a hash in an unknown format. */
  | 'ERR_LOGIN_USERS_FILE'
  /** An option that makes no sense (e.g. `none` without `allowAutologin`). */
  | 'ERR_LOGIN_CONFIG'
  /** The native core (pty, passwd, PAM) is not available. */
  | 'ERR_NATIVE_UNAVAILABLE'
  /** A backend cannot work here (PAM without libpam, login(1) without root). */
  | 'ERR_LOGIN_BACKEND_UNAVAILABLE'
  /** The PAM helper broke the protocol or died. */
  | 'ERR_LOGIN_PAM_HELPER'
  /** The console stream ended or failed. */
  | 'ERR_LOGIN_CONSOLE_CLOSED';

export class LoginShellError extends XenconsError {
  override readonly name = 'LoginShellError';
  declare readonly code: LoginShellErrorCode;

  // Narrows `code` to this package's codes.
  // biome-ignore lint/complexity/noUselessConstructor: the parameter type is the point
  constructor(code: LoginShellErrorCode, message: string, options?: XenconsErrorOptions) {
    super(code, message, options);
  }
}
