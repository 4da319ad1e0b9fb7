import { readFileSync } from 'node:fs';
import * as os from 'node:os';

/**
 * What the `/etc/issue` escapes of agetty(8) expand to. `systemIssueContext()` fills it from
 * this machine; tests pass their own.
 */
export interface IssueContext {
  /** `\n`: the host name. */
  nodename: string;
  /** `\s`: the system name (`Linux`). */
  sysname: string;
  /** `\r`: the kernel release. */
  release: string;
  /** `\v`: the kernel version string. */
  version: string;
  /** `\m`: the machine architecture (`x86_64`). */
  machine: string;
  /** `\l`: the console's name (`hvc0`). */
  tty: string;
  /** `\d`, `\t`: now. */
  now: Date;
  /** `\S`, `\S{VAR}`: /etc/os-release. */
  osRelease: Readonly<Record<string, string>>;
  /** `\o`: the NIS domain name; `\O`: the DNS domain. */
  domainname?: string;
  dnsDomain?: string;
  /** `\u`, `\U`: sessions open (unknown when absent). */
  users?: number;
  /** `\b`: the line speed, meaningless on a PV console. */
  baud?: string;
  /** `\4`, `\4{if}`, `\6`, `\6{if}`: an address of the interface (first non-internal one when unnamed). */
  address?: (family: 4 | 6, iface: string | undefined) => string | undefined;
}

/** Debian's /etc/issue, with the kernel and architecture added. */
export const DEFAULT_ISSUE = '\\S (\\s \\r \\m) \\n \\l\n\n';

const COLORS: Record<string, string> = {
  black: '30',
  red: '31',
  green: '32',
  brown: '33',
  yellow: '33',
  blue: '34',
  magenta: '35',
  cyan: '36',
  lightgray: '37',
  gray: '90',
  darkgray: '90',
  lightred: '91',
  lightgreen: '92',
  lightblue: '94',
  lightmagenta: '95',
  lightcyan: '96',
  white: '97',
  bold: '1',
  halfbright: '2',
  blink: '5',
  reverse: '7',
  reset: '0',
};

const pad = (n: number) => String(n).padStart(2, '0');
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * Expands agetty's issue escapes in `template`: `\n \s \r \v \m \l \d \t \o \O \S \S{VAR} \u \U
 * \b \4 \4{if} \6 \6{if} \e \e{color} \\`. An unknown escape is kept as typed. Line ends become
 * CRLF, since a console stream has no tty to add the CR.
 */
export function expandIssue(template: string, ctx: IssueContext): string {
  let out = '';
  for (let i = 0; i < template.length; i++) {
    const c = template[i]!;
    if (c !== '\\' || i + 1 >= template.length) {
      out += c;
      continue;
    }
    const e = template[++i]!;
    // An optional {argument} right after the escape letter.
    let arg: string | undefined;
    if ('S46e'.includes(e) && template[i + 1] === '{') {
      const close = template.indexOf('}', i + 2);
      if (close > 0) {
        arg = template.slice(i + 2, close);
        i = close;
      }
    }
    out += expandOne(e, arg, ctx);
  }
  return out.replace(/\r?\n/g, '\r\n');
}

function expandOne(e: string, arg: string | undefined, ctx: IssueContext): string {
  const d = ctx.now;
  switch (e) {
    case '\\':
      return '\\';
    case 'n':
      return ctx.nodename;
    case 's':
      return ctx.sysname;
    case 'r':
      return ctx.release;
    case 'v':
      return ctx.version;
    case 'm':
      return ctx.machine;
    case 'l':
      return ctx.tty;
    case 'd':
      return `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${pad(d.getDate())} ${d.getFullYear()}`;
    case 't':
      return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    case 'o':
      return ctx.domainname ?? '(none)';
    case 'O':
      return ctx.dnsDomain ?? 'unknown_domain';
    case 'S':
      if (arg !== undefined) return ctx.osRelease[arg] ?? '';
      return ctx.osRelease.PRETTY_NAME ?? ctx.osRelease.NAME ?? ctx.sysname;
    case 'u':
      return ctx.users === undefined ? '?' : String(ctx.users);
    case 'U':
      return ctx.users === undefined ? '? users' : `${ctx.users} user${ctx.users === 1 ? '' : 's'}`;
    case 'b':
      return ctx.baud ?? '';
    case '4':
    case '6':
      return ctx.address?.(e === '4' ? 4 : 6, arg) ?? '';
    case 'e':
      if (arg === undefined) return '\x1b';
      return COLORS[arg] === undefined ? '' : `\x1b[${COLORS[arg]}m`;
    default:
      return `\\${e}`;
  }
}

/** Parses os-release(5): KEY=value lines, values optionally quoted with shell escapes. */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2]!;
    const q = value[0];
    if ((q === '"' || q === "'") && value.endsWith(q) && value.length >= 2) {
      value = value.slice(1, -1);
      if (q === '"') value = value.replace(/\\([$"\\`])/g, '$1');
    }
    out[m[1]!] = value;
  }
  return out;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The issue context of this machine for console `tty`. */
export function systemIssueContext(tty: string, users?: number): IssueContext {
  const osRelease = parseOsRelease(
    readText('/etc/os-release') ?? readText('/usr/lib/os-release') ?? '',
  );
  const nis = readText('/proc/sys/kernel/domainname')?.trim();
  const host = os.hostname();
  const dot = host.indexOf('.');
  const ctx: IssueContext = {
    nodename: dot > 0 ? host.slice(0, dot) : host,
    sysname: os.type(),
    release: os.release(),
    version: os.version(),
    machine: os.machine(),
    tty,
    now: new Date(),
    osRelease,
    address: (family, iface) => {
      const all = os.networkInterfaces();
      const names = iface === undefined ? Object.keys(all) : [iface];
      for (const name of names) {
        for (const a of all[name] ?? []) {
          if (a.internal || a.family !== `IPv${family}`) continue;
          return a.address;
        }
      }
      return undefined;
    },
  };
  if (nis && nis !== '(none)') ctx.domainname = nis;
  if (dot > 0) ctx.dnsDomain = host.slice(dot + 1);
  if (users !== undefined) ctx.users = users;
  return ctx;
}
