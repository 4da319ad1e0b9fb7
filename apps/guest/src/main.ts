import type { ProgramIo } from './io.js';

export const EXIT = { ok: 0, failure: 1, usage: 2, sigint: 130, sigterm: 143 } as const;

const VERSION = '0.0.0';

/** Commands and the issue that brings each one; only those with a handler run today. */
const PLANNED: Record<string, string> = {
  run: 'run logins on every console and watch for new ones (issue 7)',
  debug: 'list or run debug callbacks (issue 7)',
};

export const HELP = `xencons-agent: login shells on Xen PV consoles, in the guest

Usage: xencons-agent <command> [options]

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
  if (command in PLANNED) {
    io.stderr.write(`xencons-agent ${command}: not built yet: ${PLANNED[command]}\n`);
    return EXIT.failure;
  }
  io.stderr.write(`xencons-agent: unknown command '${command}'. Run 'xencons-agent --help'.\n`);
  return EXIT.usage;
}
