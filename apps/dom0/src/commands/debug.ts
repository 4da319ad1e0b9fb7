import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { EXIT, type ProgramIo } from '@xencons/cli';
import { isXenconsError } from '@xencons/errors';
import {
  openXenstore,
  socketTransport,
  type XenstoreClient,
  xenstoredSocketPath,
} from '@xencons/xenstore';
import { simDirFromEnv } from '../world.js';

export const DEBUG_HELP = `xencons debug: send a debug key to a guest's xencons-agent

Usage: xencons debug NAME|DOMID [KEY] [options]

Without KEY, lists the keys the agent offers. With KEY, asks the agent to run that key's debug
callbacks and prints their output (the agent also writes it to its log console and to the
guest's primary console). Built-in keys: s (sessions), r (console rings), a (agent statistics),
* (all), ? (the list). Out of band, like 'xl sysrq' for the kernel: the request goes through the
agent's xenstore node /local/domain/DOMID/data/xencons-agent/request, which the agent owns and
acknowledges.

Options:
  --timeout SECONDS   how long to wait for the answer (default 10)
  --no-wait           send the key and return
  --json              {"domid", "key", "lines": [...]} (or {"domid", "keys": [...]})
  --socket PATH       xenstored socket (default: DIR/xenstored.sock on the simulated host, else
                      $XENSTORED_PATH, else /run/xenstored/socket)
  -h, --help          show this help

Exit codes: 0 ok, 1 no agent, no answer or no such domain, 2 usage error.
`;

class UsageError extends Error {}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      timeout: { type: 'string' },
      'no-wait': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      socket: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
}

/** A domain by id or by name (`/local/domain/N/name`). */
async function findDomain(xs: XenstoreClient, target: string): Promise<number> {
  if (/^\d+$/.test(target)) {
    const domid = Number(target);
    if (await xs.exists(`/local/domain/${domid}`)) return domid;
    throw new Error(`no domain ${domid}`);
  }
  const ids = await xs.directory('/local/domain').catch(() => [] as string[]);
  for (const id of ids) {
    const name = await xs.readStringOptional(`/local/domain/${id}/name`).catch(() => undefined);
    if (name === target) return Number(id);
  }
  throw new Error(`no domain named ${JSON.stringify(target)}`);
}

/** `xencons debug NAME [KEY]`: returns the exit code; never exits the process. */
export async function runDebug(argv: readonly string[], io: ProgramIo): Promise<number> {
  let values: ReturnType<typeof parse>['values'];
  let target: string;
  let key: string | undefined;
  let timeoutMs: number;
  try {
    const parsed = parse(argv);
    values = parsed.values;
    if (values.help) {
      io.stdout.write(DEBUG_HELP);
      return EXIT.ok;
    }
    const [t, k, ...rest] = parsed.positionals;
    if (t === undefined || rest.length > 0)
      throw new UsageError('give NAME|DOMID and at most one KEY');
    if (k !== undefined && !/^[!-~]$/.test(k))
      throw new UsageError(`a KEY is one printable character, not ${JSON.stringify(k)}`);
    target = t;
    key = k;
    const seconds = Number(values.timeout ?? '10');
    if (!Number.isFinite(seconds) || seconds <= 0)
      throw new UsageError('--timeout must be seconds > 0');
    timeoutMs = seconds * 1000;
  } catch (error) {
    io.stderr.write(`xencons debug: ${(error as Error).message}\nTry: xencons debug --help\n`);
    return EXIT.usage;
  }
  const sim = simDirFromEnv(io.env);
  const socketPath =
    values.socket ?? (sim ? path.join(sim, 'xenstored.sock') : xenstoredSocketPath(io.env));
  let xs: XenstoreClient | null = null;
  try {
    xs = await openXenstore({ transport: socketTransport(socketPath), reconnect: false });
    const domid = await findDomain(xs, target);
    const dir = `/local/domain/${domid}/data/xencons-agent`;
    const keys = await xs.readStringOptional(`${dir}/keys`);
    if (keys === undefined) throw new Error(`no xencons-agent runs in domain ${domid} (no ${dir})`);
    if (key === undefined) {
      // One `KEY HELP` line per key.
      const list = keys
        .split('\n')
        .filter(Boolean)
        .map((entry) => ({ key: entry.slice(0, 1), help: entry.slice(2) }));
      if (values.json) io.stdout.write(`${JSON.stringify({ domid, keys: list })}\n`);
      else {
        for (const k of list) io.stdout.write(`${k.key}  ${k.help}\n`);
        io.stdout.write('*  all of them\n?  the list, from the agent\n');
      }
      return EXIT.ok;
    }
    const id = randomBytes(4).toString('hex');
    const request = `${dir}/request`;
    if (values['no-wait']) {
      await xs.write(request, `${id} ${key}`);
      if (values.json) io.stdout.write(`${JSON.stringify({ domid, key, id, sent: true })}\n`);
      return EXIT.ok;
    }
    const reply = `${dir}/reply`;
    let answer: ((text: string) => void) | null = null;
    const answered = new Promise<string>((resolve) => {
      answer = resolve;
    });
    const watch = await xs.watch(reply, {
      onEvent: () => {
        void xs
          ?.readStringOptional(reply)
          .then((text) => {
            if (text?.startsWith(`${id}\n`)) answer?.(text.slice(id.length + 1));
          })
          .catch(() => {});
      },
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      await xs.write(request, `${id} ${key}`);
      const text = await Promise.race([
        answered,
        new Promise<null>((resolve) => {
          timer = setTimeout(() => resolve(null), timeoutMs);
        }),
      ]);
      if (text === null)
        throw new Error(
          `the agent in domain ${domid} did not answer within ${timeoutMs / 1000} s (its request node: ${request})`,
        );
      const lines = text.replace(/\n$/, '').split('\n');
      if (values.json) io.stdout.write(`${JSON.stringify({ domid, key, lines })}\n`);
      else io.stdout.write(`${lines.join('\n')}\n`);
      return EXIT.ok;
    } finally {
      clearTimeout(timer);
      await watch.close().catch(() => {});
    }
  } catch (error) {
    const code = isXenconsError(error) ? ` (${error.code})` : '';
    io.stderr.write(`xencons debug: ${(error as Error).message}${code}\n`);
    return EXIT.failure;
  } finally {
    xs?.destroy();
  }
}
