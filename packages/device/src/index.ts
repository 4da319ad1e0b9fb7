export type { ConsoleDeps } from './backend-deps.js';
export {
  CONSOLE_PROTOCOL,
  type ConsoleNodes,
  type ConsoleProbe,
  consoleBackendPath,
  consoleFrontendPath,
  consoleTypeServed,
  DEFAULT_CONSOLE_TYPES,
  LIBXL_CONSOLE_LIMIT,
  listSecondaryConsoles,
  parseConsoleLimit,
  probeConsole,
  readConsoleNodes,
  XENCONS_CONSOLE_TYPE,
} from './console-nodes.js';
export {
  ConsoleStream,
  type ConsoleStreamState,
  type ConsoleStreamStats,
} from './console-stream.js';
export { DeviceCode, DeviceError } from './device-errors.js';
export { type ConsoleSide, deviceChannels } from './diagnostics.js';
export type { ConsoleEventChannels } from './port-events.js';
export {
  type OpenPrimaryConsoleOptions,
  openPrimaryConsoleBackend,
  PrimaryConsoleBackend,
  type PrimaryConsoleInfo,
  type PrimaryConsoleState,
} from './primary-backend.js';
export {
  type AttachPrimaryConsoleOptions,
  attachPrimaryConsoleFrontend,
  type GuestPrimaryConsole,
  openGuestPrimaryConsole,
} from './primary-frontend.js';
export {
  SecondaryConsoleBackend,
  type SecondaryConsoleBackendEvents,
  type ServeSecondaryConsoleOptions,
  serveSecondaryConsole,
} from './secondary-backend.js';
export {
  type OpenSecondaryConsoleOptions,
  openSecondaryConsole,
  SecondaryConsoleFrontend,
  type SecondaryConsoleFrontendEvents,
} from './secondary-frontend.js';
export {
  type CreateSecondaryConsoleOptions,
  checkSecondaryDevid,
  createSecondaryConsole,
  LINUX_MAX_CONSOLE_DEVID,
  type RemoveSecondaryConsoleOptions,
  removeSecondaryConsole,
  type SecondaryConsoleNodes,
} from './toolstack.js';
export {
  type BackendInputs,
  type BackendStep,
  backendStep,
  type FrontendInputs,
  type FrontendStep,
  frontendStep,
} from './xenbus-machine.js';
export {
  formatXenbusState,
  parseXenbusState,
  XenbusState,
  xenbusStateName,
} from './xenbus-state.js';
