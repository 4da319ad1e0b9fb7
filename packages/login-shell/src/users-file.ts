import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { chmodSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { LoginShellError } from './errors.js';

/**
 * The `file` backend's users file: one `name:hash` per line, `#` comments and blank lines
 * allowed. A hash is scrypt (RFC 7914) in a PHC-style string:
 *
 *     $scrypt$ln=15,r=8,p=1$<salt, base64>$<key, base64>
 *
 * `ln` is log2 of the cost N. The defaults, N = 2^15, r = 8, p = 1, a 16-byte random salt and a
 * 32-byte key, take 32 MiB and about 0.1 s per check on a 2020s x86 core: slow enough to make
 * guessing expensive, fast enough for a console. Passwords are never stored, only derived keys.
 */
export interface ScryptParams {
  /** log2(N). */
  ln: number;
  r: number;
  p: number;
}

export const DEFAULT_SCRYPT: Readonly<ScryptParams> = Object.freeze({ ln: 15, r: 8, p: 1 });
const SALT_BYTES = 16;
const KEY_BYTES = 32;
/** Bounds on parameters read from a file, so a bad line cannot exhaust memory or CPU. */
const MAX = { ln: 20, r: 32, p: 16 };

export interface UserEntry {
  name: string;
  hash: string;
}

export interface ParsedHash {
  params: ScryptParams;
  salt: Buffer;
  key: Buffer;
}

/** Names a login may use: what useradd accepts by default, no leading '-'. */
export const USER_NAME = /^[a-z_][a-z0-9_.-]{0,31}\$?$/i;

export function isValidUserName(name: string): boolean {
  return USER_NAME.test(name);
}

/** A key derivation function with node's scrypt signature (replaceable in tests). */
export type Kdf = (
  password: Uint8Array,
  salt: Uint8Array,
  params: ScryptParams,
  keylen: number,
) => Promise<Buffer>;

export const scryptKdf: Kdf = (password, salt, params, keylen) =>
  new Promise((resolve, reject) => {
    const N = 2 ** params.ln;
    // scrypt needs 128 * N * r bytes; node's default cap (32 MiB) is exactly the default's need.
    const maxmem = 256 * N * params.r + 1024 * 1024;
    scrypt(password, salt, keylen, { N, r: params.r, p: params.p, maxmem }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });

/** Makes a hash line value for `password` (use `addUser` to write it to a file). */
export async function hashPassword(
  password: Uint8Array,
  params: ScryptParams = DEFAULT_SCRYPT,
  kdf: Kdf = scryptKdf,
): Promise<string> {
  checkParams(params);
  const salt = randomBytes(SALT_BYTES);
  const key = await kdf(password, salt, params, KEY_BYTES);
  const text = formatHash({ params, salt, key });
  key.fill(0);
  return text;
}

export function formatHash(h: ParsedHash): string {
  const { ln, r, p } = h.params;
  return `$scrypt$ln=${ln},r=${r},p=${p}$${h.salt.toString('base64')}$${h.key.toString('base64')}`;
}

export function parseHash(text: string): ParsedHash {
  const m =
    /^\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/.exec(
      text,
    );
  if (!m) throw new LoginShellError('ERR_LOGIN_USERS_FILE', 'not an $scrypt$ hash');
  const params = { ln: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  checkParams(params);
  const salt = Buffer.from(m[4]!, 'base64');
  const key = Buffer.from(m[5]!, 'base64');
  if (salt.length < 8 || key.length < 16 || key.length > 64) {
    throw new LoginShellError('ERR_LOGIN_USERS_FILE', 'salt or key of a bad length');
  }
  return { params, salt, key };
}

function checkParams(p: ScryptParams): void {
  const ok =
    Number.isInteger(p.ln) &&
    p.ln >= 10 &&
    p.ln <= MAX.ln &&
    Number.isInteger(p.r) &&
    p.r >= 1 &&
    p.r <= MAX.r &&
    Number.isInteger(p.p) &&
    p.p >= 1 &&
    p.p <= MAX.p;
  if (!ok) {
    throw new LoginShellError(
      'ERR_LOGIN_USERS_FILE',
      `scrypt parameters out of range (ln 10..${MAX.ln}, r 1..${MAX.r}, p 1..${MAX.p}): ${JSON.stringify(p)}`,
    );
  }
}

/** Parses a users file. Bad lines throw, naming the line (never its content: it holds a hash). */
export function parseUsersFile(text: string): UserEntry[] {
  const out: UserEntry[] = [];
  const seen = new Set<string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    const hash = line.slice(colon + 1);
    if (!isValidUserName(name)) {
      throw new LoginShellError('ERR_LOGIN_USERS_FILE', `line ${i + 1}: expected name:hash`);
    }
    try {
      parseHash(hash);
    } catch (err) {
      throw new LoginShellError(
        'ERR_LOGIN_USERS_FILE',
        `line ${i + 1} (${name}): ${(err as Error).message}`,
        { cause: err },
      );
    }
    if (seen.has(name)) {
      throw new LoginShellError('ERR_LOGIN_USERS_FILE', `line ${i + 1}: ${name} appears twice`);
    }
    seen.add(name);
    out.push({ name, hash });
  });
  return out;
}

export function readUsersFile(path: string): UserEntry[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return parseUsersFile(text);
}

/** A fixed entry to check against when the user does not exist, so both cases cost one scrypt. */
let decoy: ParsedHash | undefined;
function decoyHash(): ParsedHash {
  decoy ??= {
    params: { ...DEFAULT_SCRYPT },
    salt: randomBytes(SALT_BYTES),
    key: randomBytes(KEY_BYTES),
  };
  return decoy;
}

/**
 * Checks `password` for `name` against `entries`. An unknown name costs the same scrypt run as
 * a known one (against a decoy), and keys are compared with `timingSafeEqual`, so neither the
 * answer's timing nor its path tells whether the name exists. Derived keys are zeroed.
 */
export async function verifyPassword(
  entries: readonly UserEntry[],
  name: string,
  password: Uint8Array,
  kdf: Kdf = scryptKdf,
): Promise<boolean> {
  const entry = entries.find((e) => e.name === name);
  let target: ParsedHash;
  try {
    target = entry ? parseHash(entry.hash) : decoyHash();
  } catch {
    target = decoyHash();
  }
  const derived = await kdf(password, target.salt, target.params, target.key.length);
  try {
    return (
      entry !== undefined &&
      derived.length === target.key.length &&
      timingSafeEqual(derived, target.key)
    );
  } finally {
    derived.fill(0);
  }
}

/** Adds or replaces `name` in the users file at `path` (written atomically, mode 0600). */
export async function addUser(
  path: string,
  name: string,
  password: Uint8Array,
  params: ScryptParams = DEFAULT_SCRYPT,
): Promise<void> {
  if (!isValidUserName(name)) {
    throw new LoginShellError('ERR_LOGIN_CONFIG', `invalid user name ${JSON.stringify(name)}`);
  }
  const hash = await hashPassword(password, params);
  const entries = readUsersFile(path).filter((e) => e.name !== name);
  entries.push({ name, hash });
  writeUsersFile(path, entries);
}

/** Removes `name`; returns whether it was there. */
export function removeUser(path: string, name: string): boolean {
  const entries = readUsersFile(path);
  const kept = entries.filter((e) => e.name !== name);
  if (kept.length === entries.length) return false;
  writeUsersFile(path, kept);
  return true;
}

function writeUsersFile(path: string, entries: readonly UserEntry[]): void {
  const tmp = join(dirname(path), `.${process.pid}.${Date.now()}.users.tmp`);
  const text = `# xencons login users: name:$scrypt$ln=..,r=..,p=..$salt$key\n${entries
    .map((e) => `${e.name}:${e.hash}\n`)
    .join('')}`;
  writeFileSync(tmp, text, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}
