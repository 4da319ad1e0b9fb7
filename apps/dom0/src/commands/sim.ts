import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { EXIT, type ProgramIo } from '@xencons/cli';
import { isXenconsError } from '@xencons/errors';
import {
  hostSocketPath,
  type SimDomain,
  SimHostClient,
  serveHostControl,
  startSimHost,
} from '@xencons/sim';

export const SIM_HELP = `xencons sim: run and drive a simulated Xen host

Usage:
  xencons sim start [--dir DIR] [--detach]   start a host whose state lives in DIR
  xencons sim stop [--dir DIR]               stop it: destroy every guest, remove what it made
  xencons sim create NAME [--cmd 'COMMAND' | --agent]
                                             build a PV guest and start its process; --cmd joins
                                             COMMAND's stdin/stdout to the primary console,
                                             --agent runs xencons-agent in it
  xencons sim destroy NAME|DOMID             stop a guest and release its domain
  xencons sim list [--json]                  domains: domid, name, pid, console port and frame

Options:
  --dir DIR, --sim DIR   the host's folder (default: $XENCONS_SIM, else ${defaultDirHint()})
  --detach               start: run in the background, print the folder once it is ready
  --json                 list: one JSON document
  -h, --help             show this help

The host's xenstored listens on DIR/xenstored.sock, so Xen's tools work against it:
  XENSTORED_PATH=DIR/xenstored.sock xenstore-ls -f -p
Exit codes: 0 ok, 1 operational failure, 2 usage error, 130 SIGINT, 143 SIGTERM.
`;

function defaultDirHint(): string {
  return fs.existsSync('/dev/shm') ? '/dev/shm/xencons-sim-UID' : `${os.tmpdir()}/xencons-sim-UID`;
}

function defaultDir(env: ProgramIo['env']): string {
  if (env.XENCONS_SIM) return env.XENCONS_SIM;
  const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  return path.join(base, `xencons-sim-${os.userInfo().uid}`);
}

class UsageError extends Error {}

const line = (stream: NodeJS.WritableStream, text: string) => stream.write(`${text}\n`);

export async function runSim(argv: readonly string[], io: ProgramIo): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    line(io.stderr, `xencons sim: ${(error as Error).message}`);
    line(io.stderr, 'Try: xencons sim --help');
    return EXIT.usage;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout.write(SIM_HELP);
    return EXIT.ok;
  }
  const [command, ...rest] = positionals;
  const dir = path.resolve(values.dir ?? values.sim ?? defaultDir(io.env));
  try {
    switch (command) {
      case 'start':
        expectArgs(rest, 0, 'start');
        return values.detach ? await startDetached(dir, io) : await startForeground(dir, io);
      case 'stop':
        expectArgs(rest, 0, 'stop');
        return await stop(dir, io);
      case 'create': {
        expectArgs(rest, 1, 'create NAME');
        if (values.cmd !== undefined && values.agent)
          throw new UsageError('give --cmd or --agent, not both');
        const client = await SimHostClient.connect(dir);
        try {
          const options: { name: string; cmd?: string; program?: string[] } = {
            name: rest[0] ?? '',
          };
          if (values.cmd !== undefined) options.cmd = values.cmd;
          if (values.agent) options.program = agentProgram(io.env);
          const domain = await client.create(options);
          if (values.json) line(io.stdout, JSON.stringify(domain));
          else
            line(io.stdout, `created ${domain.name} as domain ${domain.domid} (pid ${domain.pid})`);
        } finally {
          client.close();
        }
        return EXIT.ok;
      }
      case 'destroy': {
        expectArgs(rest, 1, 'destroy NAME|DOMID');
        const client = await SimHostClient.connect(dir);
        try {
          await client.destroy(rest[0] ?? '');
        } finally {
          client.close();
        }
        return EXIT.ok;
      }
      case 'list': {
        expectArgs(rest, 0, 'list');
        const client = await SimHostClient.connect(dir);
        let domains: SimDomain[];
        try {
          domains = await client.list();
        } finally {
          client.close();
        }
        if (values.json) line(io.stdout, JSON.stringify({ dir, domains }));
        else printTable(io, domains);
        return EXIT.ok;
      }
      case undefined:
        throw new UsageError('missing command (start, stop, create, destroy, list)');
      default:
        throw new UsageError(`unknown command '${command}'`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      line(io.stderr, `xencons sim: ${error.message}`);
      line(io.stderr, 'Try: xencons sim --help');
      return EXIT.usage;
    }
    const code = isXenconsError(error) ? ` (${error.code})` : '';
    line(io.stderr, `xencons sim: ${(error as Error).message}${code}`);
    return EXIT.failure;
  }
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      dir: { type: 'string' },
      sim: { type: 'string' },
      detach: { type: 'boolean', default: false },
      cmd: { type: 'string' },
      agent: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
}

function expectArgs(rest: readonly string[], count: number, usage: string): void {
  if (rest.length !== count) throw new UsageError(`usage: xencons sim ${usage}`);
}

/** How to run xencons-agent in a guest: `XENCONS_AGENT` (a script or executable), else PATH. */
function agentProgram(env: ProgramIo['env']): string[] {
  const configured = env.XENCONS_AGENT;
  if (configured)
    return configured.endsWith('.js') ? [process.execPath, configured, 'run'] : [configured, 'run'];
  for (const dir of (env.PATH ?? '').split(':')) {
    const candidate = path.join(dir, 'xencons-agent');
    if (dir && fs.existsSync(candidate)) return [candidate, 'run'];
  }
  throw new Error(
    'xencons-agent was not found: set XENCONS_AGENT to its program, or put it on PATH',
  );
}

function printTable(io: ProgramIo, domains: readonly SimDomain[]): void {
  const rows = [['DOMID', 'NAME', 'PID', 'CONSOLE-PORT', 'RING-REF']];
  for (const d of domains) {
    rows.push([
      String(d.domid),
      d.name,
      String(d.pid ?? '-'),
      String(d.consolePort),
      String(d.consoleFrame),
    ]);
  }
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  for (const row of rows)
    line(
      io.stdout,
      row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    );
}

async function startForeground(dir: string, io: ProgramIo): Promise<number> {
  // A detached start made the folder (for the log) before starting us: it is still ours to remove.
  const existed = fs.existsSync(dir) && io.env.XENCONS_SIM_MADE_DIR !== dir;
  const host = await startSimHost({ dir });
  let finish: (code: number) => void = () => {};
  const done = new Promise<number>((resolve) => {
    finish = resolve;
  });
  const server = await serveHostControl(host, () => finish(EXIT.ok));
  fs.writeFileSync(path.join(dir, 'host.pid'), `${process.pid}\n`);
  const onTerm = () => finish(EXIT.sigterm);
  const onInt = () => finish(EXIT.sigint);
  process.once('SIGTERM', onTerm);
  process.once('SIGINT', onInt);
  line(
    io.stderr,
    `simulated host ready in ${dir} (XENCONS_SIM=${dir}; xenstored: ${dir}/xenstored.sock)`,
  );
  const code = await done;
  process.off('SIGTERM', onTerm);
  process.off('SIGINT', onInt);
  // The control socket goes last: `sim stop` waits for it to vanish.
  await host.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  for (const name of fs.readdirSync(dir)) {
    if (/^(guest-.*\.log|host\.log|host\.pid|host\.sock|xenstored\.sock)$/.test(name))
      fs.rmSync(path.join(dir, name), { force: true });
  }
  if (!existed) fs.rmSync(dir, { recursive: true, force: true });
  // SIGTERM is the orderly way to stop a daemon: report success, as the house style asks.
  return code === EXIT.sigterm ? EXIT.ok : code;
}

/** The script to re-run for `--detach`: this program's entry (`XENCONS_CLI_ENTRY` overrides, for tests). */
function cliEntry(env: ProgramIo['env']): string {
  return env.XENCONS_CLI_ENTRY ?? fileURLToPath(new URL('./cli.js', import.meta.url));
}

async function startDetached(dir: string, io: ProgramIo): Promise<number> {
  if (await hostAnswers(dir)) {
    line(io.stderr, `xencons sim: a simulated host is already running in ${dir}`);
    return EXIT.failure;
  }
  const made = !fs.existsSync(dir);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const logPath = path.join(dir, 'host.log');
  const log = fs.openSync(logPath, 'w', 0o600);
  const child = spawn(process.execPath, [cliEntry(io.env), 'sim', 'start', '--dir', dir], {
    detached: true,
    stdio: ['ignore', log, log],
    env: { ...process.env, ...io.env, ...(made ? { XENCONS_SIM_MADE_DIR: dir } : {}) },
  });
  fs.closeSync(log);
  let exited: number | null = null;
  child.once('exit', (code) => {
    exited = code ?? 1;
  });
  const deadline = Date.now() + 30_000;
  while (!(await hostAnswers(dir))) {
    if (exited !== null || Date.now() > deadline) {
      if (exited === null) child.kill('SIGKILL');
      line(io.stderr, `xencons sim: the host did not start; its log ${logPath} says:`);
      io.stderr.write(fs.readFileSync(logPath, 'utf8'));
      return EXIT.failure;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.unref();
  line(io.stdout, dir);
  line(
    io.stderr,
    `simulated host running in the background (pid ${child.pid}); stop it with: xencons sim stop --dir ${dir}`,
  );
  return EXIT.ok;
}

async function hostAnswers(dir: string): Promise<boolean> {
  try {
    (await SimHostClient.connect(dir)).close();
    return true;
  } catch {
    return false;
  }
}

function hostPid(dir: string): number | null {
  try {
    const pid = Number(fs.readFileSync(path.join(dir, 'host.pid'), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function stop(dir: string, io: ProgramIo): Promise<number> {
  const pid = hostPid(dir);
  const client = await SimHostClient.connect(dir);
  try {
    await client.stop();
  } finally {
    client.close();
  }
  const deadline = Date.now() + 30_000;
  // Done when the host process is gone (it removes its files first), else when its socket is.
  while (pid !== null ? processAlive(pid) : fs.existsSync(hostSocketPath(dir))) {
    if (Date.now() > deadline) {
      line(io.stderr, `xencons sim: the host in ${dir} did not stop within 30 s`);
      return EXIT.failure;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return EXIT.ok;
}
