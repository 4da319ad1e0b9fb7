import { EXIT } from './exit.js';
import type { ProgramIo } from './io.js';

export type CommandHandler = (argv: readonly string[], io: ProgramIo) => Promise<number>;

export interface Command {
  readonly summary: string;
  /** Absent while the issue that brings the command is open: the summary says which. */
  readonly run?: CommandHandler;
}

export interface Program {
  /** The program's name, as typed (`xencons`). */
  readonly name: string;
  /** One line under the name in `--help`. */
  readonly tagline: string;
  readonly version: string;
  readonly commands: Readonly<Record<string, Command>>;
}

export function programHelp(program: Program): string {
  const rows = Object.entries(program.commands)
    .map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`)
    .join('\n');
  return `${program.name}: ${program.tagline}

Usage: ${program.name} <command> [options]

Commands:
${rows}

Options:
  -h, --help     show this help
  -V, --version  print the version

Exit codes: 0 ok, 1 operational failure, 2 usage error, 130 SIGINT, 143 SIGTERM.
`;
}

/**
 * `main(argv, io)` for a program made of subcommands: help, version, dispatch, and clear errors
 * for unknown or not-yet-built commands. Returns the exit code; never calls `process.exit`.
 */
export async function runProgram(
  program: Program,
  argv: readonly string[],
  io: ProgramIo,
): Promise<number> {
  const [command] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    io.stdout.write(programHelp(program));
    return command === undefined ? EXIT.usage : EXIT.ok;
  }
  if (command === '-V' || command === '--version') {
    io.stdout.write(`${program.version}\n`);
    return EXIT.ok;
  }
  const entry = Object.hasOwn(program.commands, command) ? program.commands[command] : undefined;
  if (entry === undefined) {
    io.stderr.write(
      `${program.name}: unknown command '${command}'. Run '${program.name} --help'.\n`,
    );
    return EXIT.usage;
  }
  if (entry.run === undefined) {
    io.stderr.write(`${program.name} ${command}: not built yet: ${entry.summary}\n`);
    return EXIT.failure;
  }
  return await entry.run(argv.slice(1), io);
}
