export { type Account, currentAccount, lookupAccount, sessionEnv } from './accounts.js';
export {
  type AuditRecord,
  type AuditSink,
  auditErrorChannel,
  formatAuditLine,
  memoryAudit,
  type SystemLogOptions,
  streamAudit,
  systemLogAudit,
} from './audit.js';
export { ConsoleInput, type InputSink } from './console-input.js';
export { LoginShellError, type LoginShellErrorCode } from './errors.js';
export {
  DEFAULT_ISSUE,
  expandIssue,
  type IssueContext,
  parseOsRelease,
  systemIssueContext,
} from './issue.js';
export {
  type FeedResult,
  LineEditor,
  type LineEditorOptions,
  type LineEvent,
} from './line-editor.js';
export {
  type LoginBackend,
  LoginShell,
  type LoginShellOptions,
  type LoginShellStatus,
  loginShellChannel,
} from './login-shell.js';
export { type ExitInfo, Pty, PtyProcess, type SpawnOptions } from './pty.js';
export {
  type SessionConsole,
  type SessionEndReason,
  type SessionResult,
  ShellSession,
  type ShellSessionOptions,
} from './session.js';
export {
  SIZE_QUERY,
  SizeProbe,
  type SizeReply,
  SizeReplyFilter,
  type TermSize,
} from './term-size.js';
export {
  DEFAULT_THROTTLE,
  type FailureVerdict,
  LoginThrottle,
  type ThrottleOptions,
} from './throttle.js';
export { DEFAULT_USERS_FILE, type UsersCliIo, usersCliMain } from './users-cli.js';
export {
  addUser,
  DEFAULT_SCRYPT,
  formatHash,
  hashPassword,
  isValidUserName,
  type Kdf,
  type ParsedHash,
  parseHash,
  parseUsersFile,
  readUsersFile,
  removeUser,
  type ScryptParams,
  scryptKdf,
  type UserEntry,
  verifyPassword,
} from './users-file.js';
