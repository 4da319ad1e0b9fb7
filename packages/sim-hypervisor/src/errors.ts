import { XenconsError } from '@xencons/errors';

/** Errno names the simulated hypervisor answers with, as `code`. */
export type SimErrno =
  | 'EINVAL'
  | 'EPERM'
  | 'EACCES'
  | 'ENOENT'
  | 'ENOTCONN'
  | 'ESRCH'
  | 'EBUSY'
  | 'ENOSPC'
  | 'ENOSYS'
  | 'EADDRINUSE'
  | 'ECONNRESET'
  | 'EPROTO';

const ERRNO_NAMES: ReadonlySet<string> = new Set<SimErrno>([
  'EINVAL',
  'EPERM',
  'EACCES',
  'ENOENT',
  'ENOTCONN',
  'ESRCH',
  'EBUSY',
  'ENOSPC',
  'ENOSYS',
  'EADDRINUSE',
  'ECONNRESET',
  'EPROTO',
]);

/** A refused or failed hypervisor operation; `code` is an errno name (`EACCES`, `ENOENT`…). */
export class SimHypervisorError extends XenconsError {
  override readonly name = 'SimHypervisorError';
  declare readonly code: SimErrno;
}

export function isSimErrno(value: unknown): value is SimErrno {
  return typeof value === 'string' && ERRNO_NAMES.has(value);
}
