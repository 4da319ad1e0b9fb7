export { type ProgramIo, processIo } from './io.js';
export { EXIT, HELP, main } from './main.js';
