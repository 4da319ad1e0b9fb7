import { type Program, type ProgramIo, runProgram } from '@xencons/cli';

export const VERSION = '0.0.0';

export const program: Program = {
  name: 'xencons-agent',
  tagline: 'login shells on Xen PV consoles, in the guest',
  version: VERSION,
  commands: {
    run: { summary: 'run logins on every console and watch for new ones (issue 7)' },
    debug: { summary: 'list or run debug callbacks (issue 7)' },
  },
};

/** Runs the CLI and returns its exit code; never calls process.exit. */
export function main(argv: readonly string[], io: ProgramIo): Promise<number> {
  return runProgram(program, argv, io);
}
