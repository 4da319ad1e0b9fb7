import { type Program, type ProgramIo, runProgram } from '@xencons/cli';
import { runDebugCommand, runStatusCommand } from './commands/debug.js';
import { runAgent } from './commands/run.js';
import { VERSION } from './version.js';

export { VERSION };

export const program: Program = {
  name: 'xencons-agent',
  tagline: 'login shells on Xen PV consoles, in the guest',
  version: VERSION,
  commands: {
    run: {
      summary: 'a login on every console, following consoles as they come and go (run --help)',
      run: (argv, io) => runAgent(argv, io),
    },
    debug: {
      summary: "list or run the running agent's debug callbacks (debug --help)",
      run: (argv, io) => runDebugCommand(argv, io),
    },
    status: {
      summary: 'consoles, sessions and counters of the running agent (status --json)',
      run: (argv, io) => runStatusCommand(argv, io),
    },
  },
};

/** Runs the CLI and returns its exit code; never calls process.exit. */
export function main(argv: readonly string[], io: ProgramIo): Promise<number> {
  return runProgram(program, argv, io);
}
