import type { Readable, Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { LineEditor } from './line-editor.js';
import {
  addUser,
  DEFAULT_SCRYPT,
  readUsersFile,
  removeUser,
  type ScryptParams,
  verifyPassword,
} from './users-file.js';

/** What the program touches of its process (structurally the same as @xencons/cli's ProgramIo). */
export interface UsersCliIo {
  readonly stdin: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly env: Readonly<Record<string, string | undefined>>;
}

export const DEFAULT_USERS_FILE = '/etc/xencons/login-users';

const USAGE = `usage: xencons-login-users <command> [options]

Manage the users file of @xencons/login-shell's "file" backend (scrypt hashes, never passwords).

commands:
  add NAME       add or replace NAME; the password is read from the terminal (twice, no echo)
                 or from the first line of stdin
  remove NAME    remove NAME
  list           print the names (--json: as a JSON array)
  check NAME     exit 0 if the password read (as for add) is NAME's, 1 if not

options:
  --file PATH    the users file (default $XENCONS_LOGIN_USERS or ${DEFAULT_USERS_FILE})
  --cost LN      scrypt cost as log2(N) for add (default ${DEFAULT_SCRYPT.ln})
  --json         JSON output for list
`;

/** `xencons-login-users`: returns the exit code (0 ok, 1 failure, 2 usage). */
export async function usersCliMain(argv: readonly string[], io: UsersCliIo): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    io.stderr.write(`xencons-login-users: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  const [command, name, ...extra] = positionals;
  const file = values.file ?? io.env.XENCONS_LOGIN_USERS ?? DEFAULT_USERS_FILE;
  const needsName = command === 'add' || command === 'remove' || command === 'check';
  if (!command || (needsName && !name) || extra.length > 0 || (!needsName && name)) {
    io.stderr.write(USAGE);
    return 2;
  }
  try {
    switch (command) {
      case 'add': {
        const params: ScryptParams = { ...DEFAULT_SCRYPT };
        if (values.cost !== undefined) params.ln = Number(values.cost);
        const password = await readPassword(io, true);
        if (!password) return 1;
        try {
          await addUser(file, name!, password, params);
        } finally {
          password.fill(0);
        }
        io.stdout.write(`${name} added to ${file}\n`);
        return 0;
      }
      case 'remove':
        if (!removeUser(file, name!)) {
          io.stderr.write(`xencons-login-users: ${name} is not in ${file}\n`);
          return 1;
        }
        io.stdout.write(`${name} removed from ${file}\n`);
        return 0;
      case 'list': {
        const names = readUsersFile(file).map((e) => e.name);
        io.stdout.write(
          values.json ? `${JSON.stringify(names)}\n` : names.map((n) => `${n}\n`).join(''),
        );
        return 0;
      }
      case 'check': {
        const password = await readPassword(io, false);
        if (!password) return 1;
        try {
          const ok = await verifyPassword(readUsersFile(file), name!, password);
          io.stdout.write(ok ? 'ok\n' : 'wrong password or unknown user\n');
          return ok ? 0 : 1;
        } finally {
          password.fill(0);
        }
      }
      default:
        io.stderr.write(`xencons-login-users: unknown command ${command}\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    io.stderr.write(`xencons-login-users: ${(err as Error).message}\n`);
    return 1;
  }
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      file: { type: 'string' },
      cost: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

/** A password from the terminal (no echo; twice when `confirm`) or the first line of stdin. */
async function readPassword(io: UsersCliIo, confirm: boolean): Promise<Buffer | null> {
  if (io.stdin.isTTY && io.stdin.setRawMode) {
    io.stdin.setRawMode(true);
    try {
      const first = await readTtyLine(io, 'Password: ');
      if (!first) return null;
      if (!confirm) return first;
      const again = await readTtyLine(io, 'Again: ');
      const same = again?.equals(first) === true;
      again?.fill(0);
      if (!same) {
        first.fill(0);
        io.stderr.write('xencons-login-users: the passwords differ\n');
        return null;
      }
      return first;
    } finally {
      io.stdin.setRawMode(false);
    }
  }
  const line = await readFirstLine(io.stdin);
  if (line.length === 0) {
    io.stderr.write('xencons-login-users: empty password\n');
    return null;
  }
  return line;
}

function readTtyLine(io: UsersCliIo, prompt: string): Promise<Buffer | null> {
  io.stderr.write(prompt);
  const editor = new LineEditor({ echo: false, maxBytes: 512 });
  return new Promise((resolve) => {
    const onData = (chunk: Buffer) => {
      const r = editor.feed(chunk);
      if (r.echo.length > 0) io.stderr.write(r.echo);
      if (!r.event) return;
      io.stdin.off('data', onData);
      io.stdin.pause();
      if (r.event.type === 'line' && r.event.line.length > 0) {
        const copy = Buffer.from(r.event.line);
        editor.wipe();
        resolve(copy);
      } else {
        editor.wipe();
        resolve(null);
      }
    };
    io.stdin.on('data', onData);
    io.stdin.resume();
  });
}

/** The bytes before the first LF (a trailing CR dropped); reads no further than needed. */
function readFirstLine(stdin: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    const finish = () => {
      stdin.off('data', onData);
      stdin.off('end', finish);
      stdin.off('error', reject);
      stdin.pause();
      const all = Buffer.concat(parts);
      for (const p of parts) p.fill(0);
      const lf = all.indexOf(0x0a);
      let end = lf < 0 ? all.length : lf;
      if (end > 0 && all[end - 1] === 0x0d) end--;
      const line = Buffer.from(all.subarray(0, end));
      all.fill(0);
      resolve(line);
    };
    const onData = (chunk: Buffer) => {
      parts.push(Buffer.from(chunk));
      if (chunk.includes(0x0a)) finish();
    };
    stdin.on('data', onData);
    stdin.on('end', finish);
    stdin.on('error', reject);
    stdin.resume();
  });
}
