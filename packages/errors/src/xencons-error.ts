const BRAND = Symbol.for('xencons.error');

export interface XenconsErrorOptions {
  cause?: unknown;
  /** Extra machine-readable facts (peer, syscall, errno, offsets); copied onto the error. */
  details?: Record<string, unknown>;
}

/**
 * Base of every error thrown by xencons packages. `code` is stable (`ERR_RING_CORRUPT`,
 * `ERR_XS_PROTOCOL`, `ENOENT`…) and is what callers should branch on, never the message.
 */
export class XenconsError extends Error {
  override readonly name: string = 'XenconsError';
  readonly code: string;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: string, message: string, options: XenconsErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = Object.freeze({ ...(options.details ?? {}) });
    Object.defineProperty(this, BRAND, { value: true });
  }

  /** Brand check that also holds across two installed copies of this package. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    // Subclasses keep ordinary prototype checks; only the base class matches by brand.
    if (this !== XenconsError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return isXenconsError(value);
  }
}

export function isXenconsError(value: unknown, code?: string): value is XenconsError {
  if (typeof value !== 'object' || value === null) return false;
  if ((value as Record<symbol, unknown>)[BRAND] !== true) return false;
  return code === undefined || (value as { code?: unknown }).code === code;
}
