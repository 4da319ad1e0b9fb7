export { EXIT, type ProgramIo, processIo } from '@xencons/cli';
export { main, program, VERSION } from './main.js';
