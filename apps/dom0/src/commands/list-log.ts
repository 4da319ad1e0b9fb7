import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { EXIT, type ProgramIo } from '@xencons/cli';
import { listConsoles } from '../daemon/client.js';
import { defaultDaemonSocket, defaultLogDir } from './paths.js';

export const LIST_HELP = `xencons list: domains and their consoles, as the console daemon serves them

Usage: xencons list [--json] [--socket PATH]

Columns: DOMID NAME CONS(ole number) TYPE STATE TTY VIEWERS WRITER DROPPED.
`;

export async function runList(argv: readonly string[], io: ProgramIo): Promise<number> {
  let values: { json?: boolean; socket?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      options: {
        json: { type: 'boolean' },
        socket: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    io.stderr.write(`xencons list: ${(error as Error).message}\nTry: xencons list --help\n`);
    return EXIT.usage;
  }
  if (values.help) {
    io.stdout.write(LIST_HELP);
    return EXIT.ok;
  }
  let consoles: Awaited<ReturnType<typeof listConsoles>>;
  try {
    consoles = await listConsoles(values.socket ?? defaultDaemonSocket(io.env));
  } catch (error) {
    io.stderr.write(`xencons list: ${(error as Error).message}\n`);
    return EXIT.failure;
  }
  if (values.json) {
    io.stdout.write(`${JSON.stringify({ consoles })}\n`);
    return EXIT.ok;
  }
  const rows = [['DOMID', 'NAME', 'CONS', 'TYPE', 'STATE', 'TTY', 'VIEWERS', 'WRITER', 'DROPPED']];
  for (const c of consoles) {
    rows.push([
      String(c.domid),
      c.name || '-',
      String(c.num),
      c.type,
      c.state,
      c.tty ?? '-',
      String(c.viewers),
      c.writer ?? '-',
      String(c.counters?.dropped ?? 0),
    ]);
  }
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  for (const row of rows)
    io.stdout.write(
      `${row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd()}\n`,
    );
  return EXIT.ok;
}

export const LOG_HELP = `xencons log: print a guest's console log

Usage: xencons log NAME [-f] [--log-dir DIR]

  -f, --follow     keep printing as the log grows (follows rotation)
  --log-dir DIR    where the daemon writes logs (default: $XENCONS_LOG_DIR, else DIR/logs on the
                   simulated host, else /var/log/xencons)
`;

export async function runLog(argv: readonly string[], io: ProgramIo): Promise<number> {
  let values: { follow?: boolean; 'log-dir'?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: true,
      options: {
        follow: { type: 'boolean', short: 'f' },
        'log-dir': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
    if (values.help) {
      io.stdout.write(LOG_HELP);
      return EXIT.ok;
    }
    if (positionals.length !== 1 || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(positionals[0] ?? '')) {
      throw new Error('give one guest name');
    }
  } catch (error) {
    io.stderr.write(`xencons log: ${(error as Error).message}\nTry: xencons log --help\n`);
    return EXIT.usage;
  }
  const file = path.join(values['log-dir'] ?? defaultLogDir(io.env), `guest-${positionals[0]}.log`);
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (error) {
    io.stderr.write(
      `xencons log: cannot open ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}\n`,
    );
    return EXIT.failure;
  }
  const buffer = Buffer.alloc(64 * 1024);
  let position = 0;
  const drain = () => {
    for (;;) {
      const n = fs.readSync(fd, buffer, 0, buffer.length, position);
      if (n <= 0) return;
      position += n;
      io.stdout.write(Buffer.from(buffer.subarray(0, n)));
    }
  };
  drain();
  if (!values.follow) {
    fs.closeSync(fd);
    return EXIT.ok;
  }
  return new Promise<number>((resolve) => {
    const timer = setInterval(() => {
      try {
        const onDisk = fs.statSync(file);
        const open = fs.fstatSync(fd);
        if (onDisk.ino !== open.ino || onDisk.size < position) {
          drain(); // the rest of the rotated file
          fs.closeSync(fd);
          fd = fs.openSync(file, 'r');
          position = 0;
        }
      } catch {
        // rotated away and not recreated yet
      }
      drain();
    }, 200);
    const stop = (code: number) => {
      clearInterval(timer);
      fs.closeSync(fd);
      resolve(code);
    };
    process.once('SIGINT', () => stop(EXIT.sigint));
    process.once('SIGTERM', () => stop(EXIT.ok));
  });
}
