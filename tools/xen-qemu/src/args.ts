/** Command-line parsing for `xen-qemu` (pure: no I/O). */

export type Xenstored = 'c' | 'ocaml';

export const XENSTOREDS: readonly Xenstored[] = ['c', 'ocaml'];

export interface TestOptions {
  readonly command: 'test';
  /** Keep the per-run folder (share, guest disk, serial logs) even when everything passed. */
  readonly keep: boolean;
  /** Extended regular expression (grep -E) over check names; `null` runs every check. */
  readonly only: string | null;
  /** One boot per implementation, in this order. */
  readonly xenstored: readonly Xenstored[];
}

export interface BuildOptions {
  readonly command: 'build';
  /** Rebuild every artifact even when the cache has it. */
  readonly force: boolean;
}

export interface ShellOptions {
  readonly command: 'shell';
  readonly xenstored: Xenstored;
}

export type Options = TestOptions | BuildOptions | ShellOptions | { readonly command: 'help' };

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const HELP = `xen-qemu: real Xen 4.17 (Debian packages) under QEMU TCG, with xencons checks in dom0

Usage:
  xen-qemu test [--keep] [--only PATTERN] [--xenstored c|ocaml|both]
      Builds or reuses the cached image set, boots it once per xenstored implementation (default
      both), runs the checks in dom0 and prints one line per check (PASS name / FAIL name: reason),
      timings, and "N passed, M failed" last. Exit code 0 only when every check passed.
      --only PATTERN   run only the checks whose name matches PATTERN (grep -E)
      --keep           keep the per-run folder (share, guest disk, serial logs)
  xen-qemu build [--force]
      Builds the image set into the cache only (--force: rebuild every artifact).
  xen-qemu shell [--xenstored c|ocaml]
      Boots to an interactive dom0 shell on this terminal (default oxenstored, Debian's default).
      Leave with \`exit\` (dom0 powers off) or Ctrl-a x (kills QEMU).
  xen-qemu --help

Environment:
  XENCONS_XEN_QEMU_CACHE   cache folder (default \${XDG_CACHE_HOME:-~/.cache}/xencons/xen-qemu)
  XENCONS_DEBIAN_MIRROR    Debian archive URI (default: the one in this host's apt sources)
  XENCONS_DEBIAN_SECURITY_MIRROR   its security archive (default: from the apt sources too)
`;

function parseXenstored(value: string | undefined, allowBoth: boolean): Xenstored[] {
  switch (value) {
    case 'c':
    case 'cxenstored':
      return ['c'];
    case 'ocaml':
    case 'oxenstored':
      return ['ocaml'];
    case 'both':
      if (allowBoth) return ['c', 'ocaml'];
      break;
    case undefined:
      throw new UsageError('--xenstored needs a value');
  }
  throw new UsageError(
    `--xenstored must be ${allowBoth ? 'c, ocaml or both' : 'c or ocaml'}, not '${value}'`,
  );
}

function checkPattern(pattern: string): string {
  if (pattern === '') throw new UsageError('--only needs a non-empty pattern');
  // Newlines would break the shell config file's single-line assignment and the line protocol.
  if (/[\n\r\0]/.test(pattern)) throw new UsageError('--only must be a single line');
  try {
    new RegExp(pattern);
  } catch (err) {
    throw new UsageError(`--only: invalid pattern: ${(err as Error).message}`);
  }
  return pattern;
}

/** Parses `argv` (without node and the script). Throws UsageError on bad input. */
export function parseArgs(argv: readonly string[]): Options {
  const args = [...argv];
  const first = args.shift();
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    return { command: 'help' };
  }
  const take = (flag: string): string => {
    const eq = flag.indexOf('=');
    if (eq >= 0) return flag.slice(eq + 1);
    const value = args.shift();
    if (value === undefined) throw new UsageError(`${flag} needs a value`);
    return value;
  };
  const flagName = (arg: string) => (arg.includes('=') ? arg.slice(0, arg.indexOf('=')) : arg);

  if (first === 'test') {
    let keep = false;
    let only: string | null = null;
    let xenstored: Xenstored[] = ['c', 'ocaml'];
    while (args.length > 0) {
      const arg = args.shift()!;
      const name = flagName(arg);
      if (name === '--help' || name === '-h') return { command: 'help' };
      if (name === '--keep' && name === arg) keep = true;
      else if (name === '--only') only = checkPattern(take(arg));
      else if (name === '--xenstored') xenstored = parseXenstored(take(arg), true);
      else throw new UsageError(`test: unknown argument '${arg}'`);
    }
    return { command: 'test', keep, only, xenstored };
  }
  if (first === 'build') {
    let force = false;
    for (const arg of args) {
      if (arg === '--help' || arg === '-h') return { command: 'help' };
      if (arg === '--force') force = true;
      else throw new UsageError(`build: unknown argument '${arg}'`);
    }
    return { command: 'build', force };
  }
  if (first === 'shell') {
    let xenstored: Xenstored = 'ocaml';
    while (args.length > 0) {
      const arg = args.shift()!;
      const name = flagName(arg);
      if (name === '--help' || name === '-h') return { command: 'help' };
      if (name === '--xenstored') xenstored = parseXenstored(take(arg), false)[0]!;
      else throw new UsageError(`shell: unknown argument '${arg}'`);
    }
    return { command: 'shell', xenstored };
  }
  throw new UsageError(`unknown command '${first}' (test, build, shell or --help)`);
}
