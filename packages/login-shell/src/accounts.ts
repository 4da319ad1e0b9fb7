import { basename } from 'node:path';
import { native } from './native.js';

/** A local account a session runs as. */
export interface Account {
  name: string;
  uid: number;
  gid: number;
  /** Supplementary groups (with `gid`), as initgroups(3) would set them. */
  groups: number[];
  home: string;
  shell: string;
}

/** The account called `name` (passwd database through NSS), or null. */
export function lookupAccount(name: string): Account | null {
  const n = native();
  const pw = n.getpwnam(name);
  if (pw === null) return null;
  return {
    name: pw.name,
    uid: pw.uid,
    gid: pw.gid,
    groups: n.getgrouplist(pw.name, pw.gid),
    home: pw.dir || '/',
    shell: pw.shell || '/bin/sh',
  };
}

/** The account this process runs as. */
export function currentAccount(): Account {
  const n = native();
  const uid = process.getuid?.() ?? 0;
  const pw = n.getpwuid(uid);
  if (pw === null) {
    // A uid with no passwd entry (a container with an arbitrary uid): still usable.
    return {
      name: String(uid),
      uid,
      gid: process.getgid?.() ?? 0,
      groups: n.getgroups(),
      home: process.env.HOME ?? '/',
      shell: '/bin/sh',
    };
  }
  return {
    name: pw.name,
    uid: pw.uid,
    gid: pw.gid,
    groups: n.getgrouplist(pw.name, pw.gid),
    home: pw.dir || '/',
    shell: pw.shell || '/bin/sh',
  };
}

export function isRoot(): boolean {
  return (process.geteuid?.() ?? -1) === 0;
}

/** login.defs' ENV_SUPATH and ENV_PATH on Debian. */
const ROOT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const USER_PATH = '/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games';

/** The environment login(1) gives a shell: HOME, USER, LOGNAME, SHELL, TERM, PATH (+ extra). */
export function sessionEnv(
  account: Account,
  term: string,
  extra: Readonly<Record<string, string>> = {},
): Record<string, string> {
  return {
    PATH: account.uid === 0 ? ROOT_PATH : USER_PATH,
    ...extra,
    HOME: account.home,
    USER: account.name,
    LOGNAME: account.name,
    SHELL: account.shell,
    TERM: term,
  };
}

/** argv[0] of a login shell: `-bash` for /bin/bash. */
export function loginArgv0(shell: string): string {
  return `-${basename(shell)}`;
}
