import { parseArgs } from 'node:util';
import { EXIT, type ProgramIo } from '@xencons/cli';
import { isXenconsError } from '@xencons/errors';
import { attachConsole } from '../daemon/client.js';
import { defaultDaemonSocket } from './paths.js';

export const CONSOLE_HELP = `xencons console: attach this terminal to a guest console

Usage: xencons console NAME|DOMID [options]

Options:
  -n, --num N         console number (0, the primary, by default)
  -e, --escape KEY    detach key: ^X for Ctrl-X, or one character (default ^])
  -r, --read-only     watch only; keystrokes go nowhere
      --take-over     take the input from whoever is typing
      --replay BYTES  show this much recent output first (default 0)
  -f, --follow        when the domain goes away, wait for one of the same name and reattach
      --socket PATH   the console daemon's socket (default: $XENCONS_DAEMON_SOCKET, else
                      DIR/xencons/daemon.sock on the simulated host, else /run/xencons/daemon.sock)
  -h, --help          show this help

The terminal is put in raw mode (when it is one) and restored on every way out.
`;

/** `^]` → 0x1d, `^A` → 0x01, `x` → 0x78. */
export function parseEscape(text: string): number {
  if (/^\^[@-_a-z?]$/.test(text)) {
    const c = (text[1] ?? '').toUpperCase();
    return c === '?' ? 0x7f : c.charCodeAt(0) & 0x1f;
  }
  if ([...text].length === 1 && text.charCodeAt(0) < 0x80) return text.charCodeAt(0);
  throw new Error(`--escape must be ^X or one ASCII character, got ${JSON.stringify(text)}`);
}

function showEscape(code: number): string {
  if (code === 0x7f) return '^?';
  return code < 0x20 ? `^${String.fromCharCode(code + 0x40)}` : String.fromCharCode(code);
}

type RawStdin = ProgramIo['stdin'] & { setRawMode?: (raw: boolean) => void };

export async function runConsole(argv: readonly string[], io: ProgramIo): Promise<number> {
  let values: ReturnType<typeof parse>['values'];
  let target: string;
  let escapeKey: number;
  let num: number;
  let replay: number;
  try {
    const parsed = parse(argv);
    values = parsed.values;
    if (values.help) {
      io.stdout.write(CONSOLE_HELP);
      return EXIT.ok;
    }
    if (parsed.positionals.length !== 1) throw new Error('give one domain name or id');
    target = parsed.positionals[0] ?? '';
    escapeKey = parseEscape(values.escape ?? '^]');
    num = Number(values.num ?? '0');
    if (!Number.isInteger(num) || num < 0) throw new Error('--num must be a console number');
    replay = Number(values.replay ?? '0');
    if (!Number.isInteger(replay) || replay < 0) throw new Error('--replay must be a byte count');
  } catch (error) {
    io.stderr.write(`xencons console: ${(error as Error).message}\nTry: xencons console --help\n`);
    return EXIT.usage;
  }
  const socketPath = values.socket ?? defaultDaemonSocket(io.env);
  const stdin = io.stdin as RawStdin;
  const raw = stdin.isTTY === true && typeof stdin.setRawMode === 'function';
  const restore = () => {
    if (raw) stdin.setRawMode?.(false);
  };
  process.once('exit', restore);
  let announced = false;
  try {
    for (;;) {
      let attached: Awaited<ReturnType<typeof attachConsole>>;
      try {
        attached = await attachConsole(socketPath, {
          domain: target,
          num,
          mode: values['read-only'] ? 'ro' : 'rw',
          replay: announced ? 0 : replay,
          takeOver: values['take-over'] ?? false,
          label: `${io.env.USER ?? 'user'}@console`,
        });
      } catch (error) {
        const waitable =
          isXenconsError(error) && (error.code === 'ENOENT' || error.code === 'EAGAIN');
        if (values.follow && waitable) {
          if (!announced) io.stderr.write(`Waiting for ${target}...\r\n`);
          announced = true;
          await new Promise((resolve) => setTimeout(resolve, 250));
          continue;
        }
        io.stderr.write(`xencons console: ${(error as Error).message}\n`);
        return EXIT.failure;
      }
      const { console: c } = attached;
      io.stderr.write(
        `Connected to ${c.name || c.domid} (domain ${c.domid}, console ${c.num}${attached.writer ? '' : ', read-only'}). Escape character is ${showEscape(escapeKey)}\r\n`,
      );
      announced = true;
      const outcome = await pump(attached, io, stdin, raw, escapeKey);
      if (outcome === 'detached') {
        io.stderr.write('\r\n');
        return EXIT.ok;
      }
      if (outcome === 'stdin-ended' || !values.follow) {
        if (outcome === 'closed')
          io.stderr.write(`\r\nConsole of ${c.name || c.domid} closed.\r\n`);
        return EXIT.ok;
      }
      target = c.name || target;
      io.stderr.write(`\r\nConsole of ${target} closed; waiting for it to come back...\r\n`);
    }
  } finally {
    restore();
    process.off('exit', restore);
    // A paused pipe on stdin still reads ahead and would keep the process alive after detach.
    (stdin as { unref?: () => void }).unref?.();
  }
}

/** Joins stdin/stdout to the attached console until the detach key, the console's end or stdin's end. */
function pump(
  attached: Awaited<ReturnType<typeof attachConsole>>,
  io: ProgramIo,
  stdin: RawStdin,
  raw: boolean,
  escapeKey: number,
): Promise<'detached' | 'closed' | 'stdin-ended'> {
  const { socket } = attached;
  if (raw) stdin.setRawMode?.(true);
  return new Promise((resolve) => {
    let done = false;
    const finish = (why: 'detached' | 'closed' | 'stdin-ended') => {
      if (done) return;
      done = true;
      stdin.off('data', onInput);
      stdin.off('end', onStdinEnd);
      stdin.pause();
      socket.off('data', onOutput);
      if (why === 'stdin-ended') {
        // Let what was typed reach the daemon and the last output come back.
        socket.end();
        socket.on('data', (chunk: Buffer) => io.stdout.write(chunk));
        socket.once('close', () => resolve(why));
        setTimeout(() => socket.destroy(), 2000).unref();
        return;
      }
      socket.destroy();
      resolve(why);
    };
    const onOutput = (chunk: Buffer) => io.stdout.write(chunk);
    const onInput = (chunk: Buffer) => {
      const at = chunk.indexOf(escapeKey);
      if (at >= 0) {
        if (at > 0) socket.write(chunk.subarray(0, at));
        finish('detached');
        return;
      }
      if (!socket.write(chunk)) {
        stdin.pause();
        socket.once('drain', () => stdin.resume());
      }
    };
    const onStdinEnd = () => finish('stdin-ended');
    if (attached.first.length > 0) io.stdout.write(attached.first);
    socket.on('data', onOutput);
    socket.once('close', () => finish('closed'));
    socket.resume();
    stdin.on('data', onInput);
    stdin.once('end', onStdinEnd);
    stdin.resume();
  });
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: true,
    options: {
      num: { type: 'string', short: 'n' },
      escape: { type: 'string', short: 'e' },
      'read-only': { type: 'boolean', short: 'r' },
      'take-over': { type: 'boolean' },
      replay: { type: 'string' },
      follow: { type: 'boolean', short: 'f' },
      socket: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
