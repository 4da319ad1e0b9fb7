import { runXs } from './commands/xs.js';
import { runDemo } from './demo/demo.js';
import type { ProgramIo } from './io.js';

export const EXIT = { ok: 0, failure: 1, usage: 2, sigint: 130, sigterm: 143 } as const;

const VERSION = '0.0.0';

type Handler = (argv: readonly string[], io: ProgramIo) => Promise<number>;

interface Command {
  readonly summary: string;
  /** Absent while the issue that brings the command is open. */
  readonly run?: Handler;
}

const COMMANDS: Record<string, Command> = {
  console: { summary: 'attach to a guest console (issue 6)' },
  list: { summary: 'list domains and consoles (issue 6)' },
  log: { summary: 'show a guest console log (issue 6)' },
  daemon: { summary: 'run the console daemon (issue 6)' },
  demo: {
    summary: 'a shell in a guest process through a shared console page (full demo: issue 6)',
    run: (_argv, io) => runDemo(io),
  },
  xs: {
    summary: 'read|write|ls|rm|mkdir|watch|perms|chmod xenstore nodes (xencons xs --help)',
    run: (argv, io) => runXs(argv, io),
  },
  sim: { summary: 'simulated Xen host (issue 5)' },
  debug: { summary: 'send a debug key to a guest agent (issue 7)' },
};

export const HELP = `xencons: Xen PV consoles from dom0

Usage: xencons <command> [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`)
  .join('\n')}

Options:
  -h, --help     show this help
  -V, --version  print the version

Exit codes: 0 ok, 1 operational failure, 2 usage error, 130 SIGINT, 143 SIGTERM.
`;

/** Runs the CLI and returns its exit code; never calls process.exit. */
export async function main(argv: readonly string[], io: ProgramIo): Promise<number> {
  const [command] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    io.stdout.write(HELP);
    return command === undefined ? EXIT.usage : EXIT.ok;
  }
  if (command === '-V' || command === '--version') {
    io.stdout.write(`${VERSION}\n`);
    return EXIT.ok;
  }
  const entry = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (entry === undefined) {
    io.stderr.write(`xencons: unknown command '${command}'. Run 'xencons --help'.\n`);
    return EXIT.usage;
  }
  if (entry.run === undefined) {
    io.stderr.write(`xencons ${command}: not built yet: ${entry.summary}\n`);
    return EXIT.failure;
  }
  return await entry.run(argv.slice(1), io);
}
