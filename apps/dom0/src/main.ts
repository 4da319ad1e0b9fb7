import { runDemo } from './demo/demo.js';
import type { ProgramIo } from './io.js';

export const EXIT = { ok: 0, failure: 1, usage: 2, sigint: 130, sigterm: 143 } as const;

const VERSION = '0.0.0';

/** Commands and the issue that brings each one; only those with a handler run today. */
const PLANNED: Record<string, string> = {
  console: 'attach to a guest console (issue 6)',
  list: 'list domains and consoles (issue 6)',
  log: 'show a guest console log (issue 6)',
  daemon: 'run the console daemon (issue 6)',
  demo: 'a shell in a guest process through a shared console page (the full demo: issue 6)',
  xs: 'xenstore commands (issue 4)',
  sim: 'simulated Xen host (issue 5)',
  debug: 'send a debug key to a guest agent (issue 7)',
};

export const HELP = `xencons: Xen PV consoles from dom0

Usage: xencons <command> [options]

Commands:
${Object.entries(PLANNED)
  .map(([name, what]) => `  ${name.padEnd(10)} ${what}`)
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
  if (command === 'demo') return await runDemo(io);
  if (command in PLANNED) {
    io.stderr.write(`xencons ${command}: not built yet: ${PLANNED[command]}\n`);
    return EXIT.failure;
  }
  io.stderr.write(`xencons: unknown command '${command}'. Run 'xencons --help'.\n`);
  return EXIT.usage;
}
