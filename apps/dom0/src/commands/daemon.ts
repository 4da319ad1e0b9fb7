import { parseArgs } from 'node:util';
import { EXIT, type ProgramIo } from '@xencons/cli';
import { ConsoleDaemon, describeError } from '../daemon/daemon.js';
import { openDom0World } from '../world.js';
import { defaultDaemonSocket, defaultLogDir } from './paths.js';

export const DAEMON_HELP = `xencons daemon: serve every guest console (what xenconsoled does, and more)

Usage: xencons daemon [options]

Serves the primary console of every domain: a log per guest, any number of viewers through
'xencons console' (one writer at a time), replay of recent output on attach. Follows domains as
they come and go. Works on the simulated host (XENCONS_SIM) and on real Xen.

Options:
  --socket PATH         viewer socket (default: $XENCONS_DAEMON_SOCKET, else DIR/xencons/daemon.sock
                        on the simulated host, else /run/xencons/daemon.sock)
  --log-dir DIR         guest logs, guest-NAME.log (default: $XENCONS_LOG_DIR, else DIR/logs on the
                        simulated host, else /var/log/xencons)
  --no-log              no logs
  --timestamps          prefix every log line with [YYYY-MM-DD HH:MM:SS]
  --rotate-size BYTES   rotate a log past this size (default 0: never)
  --rotate-keep N       rotated logs kept, NAME.log.1 .. NAME.log.N (default 5)
  --overflow POLICY     keep (default): a guest that outruns the log or the rate limit waits, nothing
                        is lost; discard: it never waits, what does not fit is dropped and counted
  --rate BYTES          guest output per console and second (default 0: unlimited)
  --replay BYTES        recent output kept per console for replay (default 65536)
  --types LIST          console/type values served (default xenconsoled,xencons)
  --primary MODE        ring: map primary consoles' pages (we are the backend); pty: sit on the
                        pty xenconsoled publishes in console/tty; auto (default): pty when a
                        xenconsoled process runs here, else ring
  -h, --help            show this help

Signals: SIGHUP reopens the logs; SIGTERM stops (exit 0).
`;

function byteCount(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const match = /^(\d+)([kKmMgG]?)$/.exec(value);
  if (!match) throw new Error(`${name} must be a byte count like 65536, 64k or 1M`);
  const scale = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(match[2] ?? '').toLowerCase()] ?? 1;
  return Number(match[1]) * scale;
}

export async function runDaemon(argv: readonly string[], io: ProgramIo): Promise<number> {
  let values: ReturnType<typeof parse>['values'];
  let options: {
    rotateBytes: number;
    rotateKeep: number;
    rate: number;
    replay: number;
    policy: 'keep' | 'discard';
    primary: 'auto' | 'ring' | 'pty';
  };
  try {
    ({ values } = parse(argv));
    if (values.help) {
      io.stdout.write(DAEMON_HELP);
      return EXIT.ok;
    }
    const policy = values.overflow ?? 'keep';
    if (policy !== 'keep' && policy !== 'discard')
      throw new Error('--overflow must be keep or discard');
    const keep = Number(values['rotate-keep'] ?? '5');
    if (!Number.isInteger(keep) || keep < 0) throw new Error('--rotate-keep must be a count');
    options = {
      rotateBytes: byteCount(values['rotate-size'], '--rotate-size', 0),
      rotateKeep: keep,
      rate: byteCount(values.rate, '--rate', 0),
      replay: byteCount(values.replay, '--replay', 65536),
      policy,
      primary: parsePrimary(values.primary),
    };
  } catch (error) {
    io.stderr.write(`xencons daemon: ${(error as Error).message}\nTry: xencons daemon --help\n`);
    return EXIT.usage;
  }
  let world: Awaited<ReturnType<typeof openDom0World>>;
  try {
    world = await openDom0World(io.env);
  } catch (error) {
    io.stderr.write(`xencons daemon: cannot reach Xen: ${describeError(error)}\n`);
    return EXIT.failure;
  }
  const socketPath = values.socket ?? defaultDaemonSocket(io.env);
  const daemon = new ConsoleDaemon({
    xs: world.xs,
    gnttab: world.gnttab,
    events: world.events,
    socketPath,
    logDir: values['no-log'] ? null : (values['log-dir'] ?? defaultLogDir(io.env)),
    timestamps: values.timestamps ?? false,
    rotateBytes: options.rotateBytes,
    rotateKeep: options.rotateKeep,
    policy: options.policy,
    rate: options.rate,
    replayBytes: options.replay,
    types: (values.types ?? 'xenconsoled,xencons').split(',').filter(Boolean),
    primary: options.primary,
  });
  daemon.on('event', (event) => {
    if (event.type === 'console-up')
      io.stderr.write(
        `console up: ${event.name || event.domid} (domain ${event.domid}, via ${event.via})\n`,
      );
    else if (event.type === 'console-down')
      io.stderr.write(
        `console down: ${event.name || event.domid} (domain ${event.domid}): ${event.reason}\n`,
      );
    else if (event.type === 'console-moved')
      io.stderr.write(
        `console moved: ${event.name || event.domid} (domain ${event.domid}) to a new ring (via ${event.via})\n`,
      );
    else if (event.type === 'console-error')
      io.stderr.write(`console error: domain ${event.domid}: ${event.error}\n`);
  });
  try {
    await daemon.start();
  } catch (error) {
    io.stderr.write(`xencons daemon: ${describeError(error)}\n`);
    await daemon.close();
    await world.close();
    return EXIT.failure;
  }
  io.stderr.write(`xencons daemon ready (${world.kind}); viewers connect to ${socketPath}\n`);
  const code = await new Promise<number>((resolve) => {
    const onHup = () => daemon.reopenLogs();
    process.on('SIGHUP', onHup);
    process.once('SIGTERM', () => resolve(EXIT.ok));
    process.once('SIGINT', () => resolve(EXIT.sigint));
  });
  await daemon.close();
  await world.close();
  return code;
}

function parsePrimary(value: string | undefined): 'auto' | 'ring' | 'pty' {
  if (value === undefined || value === 'auto' || value === 'ring' || value === 'pty')
    return value ?? 'auto';
  throw new Error('--primary must be auto, ring or pty');
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      socket: { type: 'string' },
      'log-dir': { type: 'string' },
      'no-log': { type: 'boolean' },
      timestamps: { type: 'boolean' },
      'rotate-size': { type: 'string' },
      'rotate-keep': { type: 'string' },
      overflow: { type: 'string' },
      rate: { type: 'string' },
      replay: { type: 'string' },
      types: { type: 'string' },
      primary: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
