export { EXIT, type ProgramIo, processIo } from '@xencons/cli';
export {
  Agent,
  type AgentOptions,
  type AgentStats,
  type AgentStatus,
  type ConsoleSelection,
  LOG_CHANNEL,
  type LogConsoleChoice,
} from './agent.js';
export { ConsoleWorker, type ShellFactory, type ShellLike } from './console-worker.js';
export { SimConsoleSource } from './consoles/sim-source.js';
export { TtyConsoleSource, type TtySourceOptions } from './consoles/tty-source.js';
export { TtyStream } from './consoles/tty-stream.js';
export type {
  AgentConsole,
  ConsoleInfo,
  ConsoleKind,
  ConsoleRole,
  ConsoleSource,
  ConsoleSourceHandlers,
} from './consoles/types.js';
export {
  GUID_XENCONS_DEVICE,
  parsePnputilInterfaces,
  WindowsConsoleSource,
  xenconsDevid,
} from './consoles/windows-source.js';
export {
  askAgent,
  type ControlReply,
  type ControlRequest,
  defaultControlSocket,
} from './control.js';
export {
  ALL_KEY,
  type DebugCallback,
  type DebugOutput,
  DebugRegistry,
  type DebugTrigger,
  globalDebugRegistry,
  HELP_KEY,
  registerDebugCallback,
} from './debug/registry.js';
export {
  agentNodePath,
  formatDebugReply,
  MAX_REPLY_BYTES,
  parseDebugRequest,
  XenstoreDebugNode,
} from './debug/xenstore-node.js';
export { HotkeyFilter, HotkeyScanner, parseHotkeyPrefix, type ScanPiece } from './hotkeys.js';
export { AgentLog, type LogLevel, type LogRecord, type LogSink, streamSink } from './log.js';
export { LogConsole } from './log-console.js';
export { main, program, VERSION } from './main.js';
