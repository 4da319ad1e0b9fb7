import { parseArgs } from 'node:util';
import type { ProgramIo } from '@xencons/cli';
import { isXenconsError } from '@xencons/errors';
import {
  formatAcl,
  openXenstore,
  parseAcl,
  pathProblem,
  socketTransport,
  type XenstoreClient,
  type XsAcl,
  xenstoredSocketPath,
} from '@xencons/xenstore';

const EXIT_OK = 0;
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

export const XS_HELP = `xencons xs: read and change xenstore

Usage: xencons xs <command> [options] [arguments]

Commands:
  read PATH...              print the value of each node
  write PATH VALUE...       set nodes (pairs of PATH VALUE)
  ls [PATH]                 list a subtree with values (default /)
  rm PATH...                remove nodes and everything below them
  mkdir PATH...             create empty nodes
  watch PATH...             print a line per watch event (initial events included)
  perms PATH...             print each node's permissions (n0 r5 ...)
  chmod PATH PERM...        set permissions: owner first, then per-domain entries
                            (n = none, r = read, w = write, b = both, e.g. n0 r5)

Options:
  --socket PATH   xenstored socket (default: $XENSTORED_PATH, else $XENSTORED_RUNDIR/socket,
                  else /run/xenstored/socket)
  --json          machine-readable output (one JSON document; JSON lines for watch)
  -n, --count N   watch: exit after N events
  -p, --perms     ls: show permissions too
  -h, --help      show this help

Exit codes: 0 ok, 1 operational failure (missing node, no daemon, refused), 2 usage error.
`;

class UsageError extends Error {}

interface Flags {
  socket: string | undefined;
  json: boolean;
  count: number | undefined;
  perms: boolean;
}

const line = (io: ProgramIo, s: string) => io.stdout.write(`${s}\n`);
const json = (io: ProgramIo, v: unknown) => io.stdout.write(`${JSON.stringify(v)}\n`);

function checkPaths(paths: readonly string[], allowSpecial = false): void {
  for (const p of paths) {
    const problem = pathProblem(p, { allowSpecial });
    if (problem !== null) throw new UsageError(`invalid path ${JSON.stringify(p)}: ${problem}`);
  }
}

/** `xs ls` output in xenstore-ls style: `name = "value"`, children indented by one space. */
async function listTree(
  xs: XenstoreClient,
  root: string,
): Promise<{ path: string; value: string; acl: XsAcl | undefined; depth: number }[]> {
  const out: { path: string; value: string; acl: XsAcl | undefined; depth: number }[] = [];
  const walk = async (path: string, depth: number): Promise<void> => {
    const children = await xs.directory(path);
    const full = children.map((c) => (path === '/' ? `/${c}` : `${path}/${c}`));
    const [values, acls] = await Promise.all([
      Promise.all(full.map((p) => xs.readStringOptional(p))),
      Promise.all(full.map((p) => xs.getPerms(p).catch(() => undefined))),
    ]);
    for (let i = 0; i < full.length; i++) {
      if (values[i] === undefined) continue; // removed meanwhile
      out.push({ path: full[i]!, value: values[i]!, acl: acls[i], depth });
      await walk(full[i]!, depth + 1);
    }
  };
  await walk(root, 0);
  return out;
}

function quote(value: string): string {
  return JSON.stringify(value);
}

async function run(
  cmd: string,
  args: string[],
  flags: Flags,
  io: ProgramIo,
  xs: () => Promise<XenstoreClient>,
): Promise<number> {
  switch (cmd) {
    case 'read': {
      if (args.length === 0) throw new UsageError('read needs at least one PATH');
      checkPaths(args);
      const c = await xs();
      const values = await Promise.all(args.map((p) => c.readString(p)));
      if (flags.json) json(io, Object.fromEntries(args.map((p, i) => [p, values[i]])));
      else for (const v of values) line(io, v);
      return EXIT_OK;
    }
    case 'write': {
      if (args.length === 0 || args.length % 2 !== 0)
        throw new UsageError('write needs PATH VALUE pairs');
      const pairs: [string, string][] = [];
      for (let i = 0; i < args.length; i += 2) pairs.push([args[i]!, args[i + 1]!]);
      checkPaths(pairs.map(([p]) => p));
      const c = await xs();
      await Promise.all(pairs.map(([p, v]) => c.write(p, v)));
      if (flags.json) json(io, { written: pairs.map(([p]) => p) });
      return EXIT_OK;
    }
    case 'rm':
    case 'mkdir': {
      if (args.length === 0) throw new UsageError(`${cmd} needs at least one PATH`);
      checkPaths(args);
      const c = await xs();
      for (const p of args) await (cmd === 'rm' ? c.rm(p) : c.mkdir(p));
      if (flags.json) json(io, { [cmd === 'rm' ? 'removed' : 'created']: args });
      return EXIT_OK;
    }
    case 'ls': {
      if (args.length > 1) throw new UsageError('ls takes at most one PATH');
      const root = args[0] ?? '/';
      checkPaths([root]);
      const c = await xs();
      const nodes = await listTree(c, root);
      if (flags.json) {
        json(
          io,
          nodes.map((n) => ({
            path: n.path,
            value: n.value,
            ...(flags.perms && n.acl ? { perms: n.acl } : {}),
          })),
        );
      } else {
        for (const n of nodes) {
          const name = n.path.slice(n.path.lastIndexOf('/') + 1);
          const perms = flags.perms && n.acl ? `  (${formatAcl(n.acl).join(',')})` : '';
          line(io, `${' '.repeat(n.depth)}${name} = ${quote(n.value)}${perms}`);
        }
      }
      return EXIT_OK;
    }
    case 'perms': {
      if (args.length === 0) throw new UsageError('perms needs at least one PATH');
      checkPaths(args, true);
      const c = await xs();
      const acls = await Promise.all(args.map((p) => c.getPerms(p)));
      if (flags.json) json(io, Object.fromEntries(args.map((p, i) => [p, acls[i]])));
      else for (const a of acls) line(io, formatAcl(a).join(' '));
      return EXIT_OK;
    }
    case 'chmod': {
      const [path, ...perms] = args;
      if (path === undefined || perms.length === 0)
        throw new UsageError('chmod needs PATH and at least one PERM');
      checkPaths([path], true);
      const acl = parseAcl(perms);
      if (acl === undefined)
        throw new UsageError(`invalid permissions ${perms.join(' ')} (expected e.g. n0 r5 b7)`);
      const c = await xs();
      await c.setPerms(path, acl);
      if (flags.json) json(io, { [path]: acl });
      return EXIT_OK;
    }
    case 'watch': {
      if (args.length === 0) throw new UsageError('watch needs at least one PATH');
      checkPaths(args, true);
      const c = await xs();
      let remaining = flags.count ?? Number.POSITIVE_INFINITY;
      if (remaining <= 0) return EXIT_OK;
      let done!: () => void;
      const finished = new Promise<void>((r) => {
        done = r;
      });
      const watches = await Promise.all(
        args.map((p) =>
          c.watch(p, {
            onEvent: (ev) => {
              if (remaining <= 0) return;
              remaining--;
              if (flags.json) json(io, ev);
              else line(io, ev.path);
              if (remaining <= 0) done();
            },
          }),
        ),
      );
      await finished;
      await Promise.all(watches.map((w) => w.close()));
      return EXIT_OK;
    }
    default:
      throw new UsageError(`unknown xs command '${cmd}'`);
  }
}

/** `xencons xs ...`: returns the exit code; never exits the process. */
export async function runXs(argv: readonly string[], io: ProgramIo): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    io.stderr.write(`xencons xs: ${(err as Error).message}\nRun 'xencons xs --help'.\n`);
    return EXIT_USAGE;
  }
  const { values, positionals } = parsed;
  const [cmd, ...args] = positionals;
  if (values.help === true || cmd === 'help') {
    io.stdout.write(XS_HELP);
    return EXIT_OK;
  }
  if (cmd === undefined) {
    io.stderr.write(XS_HELP);
    return EXIT_USAGE;
  }
  let count: number | undefined;
  if (values.count !== undefined) {
    count = Number(values.count);
    if (!Number.isInteger(count) || count < 0) {
      io.stderr.write(`xencons xs: --count must be a whole number, not '${values.count}'\n`);
      return EXIT_USAGE;
    }
  }
  const flags: Flags = {
    socket: values.socket,
    json: values.json === true,
    count,
    perms: values.perms === true,
  };
  const socketPath = flags.socket ?? xenstoredSocketPath(io.env);
  let client: XenstoreClient | undefined;
  const connect = async () => {
    client ??= await openXenstore({ transport: socketTransport(socketPath), reconnect: false });
    return client;
  };
  try {
    return await run(cmd, args, flags, io, connect);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`xencons xs ${cmd}: ${err.message}\nRun 'xencons xs --help'.\n`);
      return EXIT_USAGE;
    }
    const code = isXenconsError(err) ? err.code : undefined;
    const message = (err as Error).message ?? String(err);
    if (flags.json) io.stderr.write(`${JSON.stringify({ error: { code, message } })}\n`);
    else
      io.stderr.write(
        `xencons xs ${cmd}: ${message}${code !== undefined && !message.includes(code) ? ` (${code})` : ''}\n`,
      );
    return EXIT_FAILURE;
  } finally {
    client?.destroy();
  }
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      socket: { type: 'string' },
      json: { type: 'boolean' },
      count: { type: 'string', short: 'n' },
      perms: { type: 'boolean', short: 'p' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
