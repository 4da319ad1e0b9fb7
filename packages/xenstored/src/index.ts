export { atoi, atou, strtol } from './c-number.js';
export { Connection, type ConnectionInit, type ConnectionKind } from './connection.js';
export { runControl } from './control.js';
export {
  DEFAULT_SPIN_MICROS,
  type DomainState,
  diagnostics,
  type IntroduceRequest,
  Xenstored,
  type XenstoredEvent,
  type XenstoredOptions,
  type XenstoredStats,
} from './daemon.js';
export { duplexPair } from './duplex-pair.js';
export { canonicalize, domainPath, isValidNodename, parentOf } from './path.js';
export {
  type Caller,
  PERM_IGNORE,
  PERM_NONE,
  PERM_OWNER,
  PERM_READ,
  PERM_WRITE,
  type PermEntry,
  type Perms,
  parsePerms,
  permFor,
  permToString,
} from './perms.js';
export { DEFAULT_QUOTAS, QUOTA_NAMES, type Quotas } from './quotas.js';
export { type RunningXenstored, type StartOptions, startXenstored } from './server.js';
