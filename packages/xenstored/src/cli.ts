#!/usr/bin/env -S node --max-semi-space-size=2
// A 2 MiB young generation: the default 16 MiB semi-spaces add ~25 MiB of RSS under write
// bursts (100,000 nodes: 72 MiB instead of 96 MiB), for a daemon whose live data is small.
import { subscribe } from 'node:diagnostics_channel';
import { rmSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DEFAULT_SPIN_MICROS, type XenstoredEvent } from './daemon.js';
import { QUOTA_NAMES, type Quotas } from './quotas.js';
import { startXenstored } from './server.js';

const HELP = `xencons-xenstored --socket PATH [--trace FILE] [--pid-file FILE] [--quota NAME=N]...

The reference xenstore daemon: serves dom0 tools on a unix socket (mode 0600), with Xen 4.17's
permissions, watches, transactions and quotas. Point Xen's tools at it with XENSTORED_PATH=PATH.

  --socket PATH     unix socket to listen on (required)
  --trace FILE      append a trace of every request and reply (SIGHUP reopens it)
  --pid-file FILE   write the daemon's pid here (removed on exit)
  --quota NAME=N    set a quota: ${QUOTA_NAMES.map(([n]) => n).join(', ')}
  --spin-us N       after a request, poll for N µs before sleeping (default ${DEFAULT_SPIN_MICROS}; 0: off)
  -h, --help        this text

Readiness is logged once to stderr; SIGTERM closes every connection and exits 0.
Log level from XENCONS_LOG (error, warn, info, debug; default info).
`;

export interface Io {
  readonly stdout: { write(s: string): unknown };
  readonly stderr: { write(s: string): unknown; isTTY?: boolean };
}

const LEVELS = { error: 0, warn: 1, info: 2, debug: 3 } as const;
type Level = keyof typeof LEVELS;

function logger(io: Io) {
  const env = process.env.XENCONS_LOG as Level | undefined;
  const max = LEVELS[env ?? 'info'] ?? LEVELS.info;
  const human = io.stderr.isTTY === true;
  return (level: Level, msg: string, fields: Record<string, unknown> = {}) => {
    if (LEVELS[level] > max) return;
    if (human) {
      const extra = Object.entries(fields)
        .map(([k, v]) => ` ${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join('');
      io.stderr.write(`xencons-xenstored ${level}: ${msg}${extra}\n`);
    } else {
      io.stderr.write(
        `${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`,
      );
    }
  };
}

/** The program; resolves with the exit code when the daemon stops. Never calls process.exit. */
export async function main(argv: string[], io: Io = process): Promise<number> {
  let values: {
    socket?: string;
    trace?: string;
    'pid-file'?: string;
    quota?: string[];
    'spin-us'?: string;
    help?: boolean;
  };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        socket: { type: 'string' },
        trace: { type: 'string' },
        'pid-file': { type: 'string' },
        quota: { type: 'string', multiple: true },
        'spin-us': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: false,
    }));
  } catch (err) {
    io.stderr.write(`xencons-xenstored: ${(err as Error).message}\n${HELP}`);
    return 2;
  }
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (values.socket === undefined) {
    io.stderr.write(`xencons-xenstored: --socket PATH is required\n${HELP}`);
    return 2;
  }
  const quotas: Partial<Quotas> = {};
  for (const q of values.quota ?? []) {
    const m = /^([a-z-]+)=(\d+)$/.exec(q);
    const entry = m ? QUOTA_NAMES.find(([n]) => n === m[1]) : undefined;
    if (!m || entry === undefined || Number(m[2]) < 1) {
      io.stderr.write(`xencons-xenstored: bad --quota ${q}: expected NAME=N with N >= 1\n`);
      return 2;
    }
    quotas[entry[1]] = Number(m[2]);
  }
  const spinArg = values['spin-us'];
  const spinMicros = spinArg === undefined ? undefined : Number(spinArg);
  if (spinMicros !== undefined && !(Number.isInteger(spinMicros) && spinMicros >= 0)) {
    io.stderr.write(`xencons-xenstored: bad --spin-us ${spinArg}: expected an integer >= 0\n`);
    return 2;
  }
  const log = logger(io);
  const onEvent = (message: unknown) => {
    const e = message as XenstoredEvent;
    if (e.type === 'control-print') log('info', `control: ${e.text}`);
    else if (e.type === 'memory-quota') {
      log('warn', `domain ${e.domid} reached its ${e.level} memory quota`, { memory: e.memory });
    } else if (e.type === 'check') log('warn', 'check found problems', { problems: e.problems });
    else if (e.type === 'disconnect' && (e.dropped || e.reason.startsWith('protocol error'))) {
      log('warn', `connection ${e.label} closed`, { domid: e.domid, reason: e.reason });
    } else if (e.type === 'internal-error')
      log('error', 'internal error', { error: String(e.error) });
  };
  subscribe('xencons:xenstored', onEvent);
  let running: Awaited<ReturnType<typeof startXenstored>>;
  try {
    running = await startXenstored({
      socketPath: values.socket,
      quotas,
      ...(spinMicros === undefined ? {} : { spinMicros }),
      ...(values.trace === undefined ? {} : { trace: values.trace }),
    });
  } catch (err) {
    log('error', (err as Error).message);
    return 1;
  }
  const pidFile = values['pid-file'];
  if (pidFile !== undefined) writeFileSync(pidFile, `${process.pid}\n`);
  log('info', `ready on ${values.socket}`, { pid: process.pid });
  const code = await new Promise<number>((resolve) => {
    process.once('SIGTERM', () => resolve(0));
    process.once('SIGINT', () => resolve(130));
    process.on('SIGHUP', () => running.reopenTrace());
  });
  await running.close();
  if (pidFile !== undefined) rmSync(pidFile, { force: true });
  log('info', 'stopped', { stats: running.daemon.stats() });
  return code;
}

const invoked = process.argv[1] ?? '';
if (/(?:^|[\\/])(?:cli\.m?[jt]s|xencons-xenstored)$/.test(invoked)) {
  process.exitCode = await main(process.argv.slice(2));
}
