import { parseArgs } from 'node:util';
import { EXIT, type ProgramIo } from '@xencons/cli';
import { askAgent, defaultControlSocket } from '../control.js';

export const DEBUG_HELP = `xencons-agent debug: run the running agent's debug callbacks

Usage: xencons-agent debug [KEY] [options]

Without KEY, lists the keys. Built in: s (sessions), r (console rings), a (agent statistics),
* (all of them), ? (the list). The output is printed here and goes to the agent's log console.
From dom0 the same keys go through xenstore: xencons debug NAME KEY. On a console: the hotkey
prefix (Ctrl-^ by default) and then the key.

Options:
  --control PATH   the agent's control socket (default: $XENCONS_AGENT_SOCKET, DIR/agent-DOMID.sock
                   on the simulated host, /run/xencons-agent.sock as root)
  --json           {"lines": [...]}
  -h, --help       show this help
`;

export const STATUS_HELP = `xencons-agent status: what the running agent serves

Usage: xencons-agent status [--json] [--control PATH]

Prints each console (its role, session and restarts), the log console and the agent's counters.
`;

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      control: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
}

export async function runDebugCommand(argv: readonly string[], io: ProgramIo): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
    if (parsed.positionals.length > 1) throw new Error('give at most one KEY');
    const key = parsed.positionals[0];
    if (key !== undefined && key.length !== 1)
      throw new Error(`a KEY is one character, not ${JSON.stringify(key)}`);
  } catch (error) {
    io.stderr.write(
      `xencons-agent debug: ${(error as Error).message}\nTry: xencons-agent debug --help\n`,
    );
    return EXIT.usage;
  }
  if (parsed.values.help) {
    io.stdout.write(DEBUG_HELP);
    return EXIT.ok;
  }
  const socket = parsed.values.control ?? defaultControlSocket(io.env);
  try {
    const reply = await askAgent(socket, { op: 'debug', key: parsed.positionals[0] ?? '?' });
    if (!reply.ok) throw new Error(reply.error);
    if (!('lines' in reply)) throw new Error('unexpected answer');
    if (parsed.values.json) io.stdout.write(`${JSON.stringify({ lines: reply.lines })}\n`);
    else io.stdout.write(`${reply.lines.join('\n')}\n`);
    return EXIT.ok;
  } catch (error) {
    io.stderr.write(
      `xencons-agent debug: ${(error as Error).message} (is the agent running? socket ${socket})\n`,
    );
    return EXIT.failure;
  }
}

export async function runStatusCommand(argv: readonly string[], io: ProgramIo): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
    if (parsed.positionals.length > 0) throw new Error('status takes no arguments');
  } catch (error) {
    io.stderr.write(
      `xencons-agent status: ${(error as Error).message}\nTry: xencons-agent status --help\n`,
    );
    return EXIT.usage;
  }
  if (parsed.values.help) {
    io.stdout.write(STATUS_HELP);
    return EXIT.ok;
  }
  const socket = parsed.values.control ?? defaultControlSocket(io.env);
  try {
    const reply = await askAgent(socket, { op: 'status' });
    if (!reply.ok) throw new Error(reply.error);
    if (!('status' in reply)) throw new Error('unexpected answer');
    const status = reply.status as {
      platform: string;
      pid: number;
      consoles: {
        name: string;
        role: string;
        primary: boolean;
        channel: string | null;
        session: { user: string; pty: string; since: string } | null;
        restarts: number;
      }[];
      logConsole: { attached: string | null; forwarded: number; dropped: number };
    };
    if (parsed.values.json) {
      io.stdout.write(`${JSON.stringify(status)}\n`);
      return EXIT.ok;
    }
    io.stdout.write(`xencons-agent pid ${status.pid} on ${status.platform}\n`);
    for (const c of status.consoles) {
      const what =
        c.role === 'log'
          ? 'log console'
          : c.session
            ? `${c.session.user} on ${c.session.pty} since ${c.session.since}`
            : 'login prompt';
      io.stdout.write(
        `  ${c.name.padEnd(8)} ${what}${c.primary ? ' (primary)' : ''}${c.channel ? ` [${c.channel}]` : ''}${c.restarts ? ` restarted ${c.restarts}x` : ''}\n`,
      );
    }
    const lc = status.logConsole;
    io.stdout.write(
      `  log: ${lc.attached ?? 'no log console'} (forwarded ${lc.forwarded}, dropped ${lc.dropped})\n`,
    );
    return EXIT.ok;
  } catch (error) {
    io.stderr.write(
      `xencons-agent status: ${(error as Error).message} (is the agent running? socket ${socket})\n`,
    );
    return EXIT.failure;
  }
}
