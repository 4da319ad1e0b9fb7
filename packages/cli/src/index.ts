export { type CapturedIo, captureIo } from './capture-io.js';
export {
  type Command,
  type CommandHandler,
  type Program,
  programHelp,
  runProgram,
} from './command-table.js';
export { EXIT } from './exit.js';
export { type ProgramIo, processIo } from './io.js';
