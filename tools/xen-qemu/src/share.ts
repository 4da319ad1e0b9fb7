/**
 * The per-run share: what the project built, handed to dom0 over virtio-9p (tag `host`) and to
 * the guest as a read-only ext4 disk, without rebuilding any image.
 *
 *   share/payload/node          the host's node binary (the addon's ABI matches it)
 *   share/payload/repo/...      packages/* and apps/* as published (package.json `files`), plus
 *                               the production dependencies they resolve, pnpm's symlinks kept
 *   share/payload/vm/...        the check scripts (tools/xen-qemu/vm/checks)
 *   share/images/               the guest's kernel and initramfs
 *   share/config.env            settings for the check script
 *   share/out/                  results written by dom0
 *   payload.img                 share/payload as ext4 (the guest's xvda)
 *
 * Everything is copied, never hard-linked: dom0 can write to the share.
 */
import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { run } from './exec.js';

export interface Share {
  readonly shareDir: string;
  readonly payloadDir: string;
  readonly outDir: string;
  readonly diskPath: string;
}

const inside = (root: string, p: string) => p === root || p.startsWith(root + sep);

function copyFile(src: string, dest: string): void {
  mkdirSync(dirname(dest), { recursive: true });
  copyFileSync(src, dest);
}

/** Copies a tree, keeping symlinks as symlinks, skipping names `skip` returns true for. */
function copyTree(src: string, dest: string, skip: (name: string) => boolean = () => false): void {
  const st = lstatSync(src);
  if (st.isSymbolicLink()) {
    mkdirSync(dirname(dest), { recursive: true });
    if (!existsSync(dest)) symlinkSync(readlinkSync(src), dest);
  } else if (st.isDirectory()) {
    mkdirSync(dest, { recursive: true });
    for (const name of readdirSync(src)) {
      if (!skip(name)) copyTree(join(src, name), join(dest, name), skip);
    }
  } else if (st.isFile()) {
    copyFile(src, dest);
  }
}

interface PackageJson {
  readonly name?: string;
  readonly files?: readonly string[];
  readonly dependencies?: Readonly<Record<string, string>>;
  readonly optionalDependencies?: Readonly<Record<string, string>>;
  readonly peerDependencies?: Readonly<Record<string, string>>;
}

function readPackageJson(dir: string): PackageJson | null {
  try {
    return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson;
  } catch {
    return null;
  }
}

/**
 * The top-level entries of a workspace package that go into the share: package.json and what its
 * `files` names (folders, files, and `*.ext` globs), as npm would publish it; `dist` when it has
 * no `files`. Entries that do not exist (a dist not built yet) are left out.
 */
export function publishedEntries(dir: string, pkg: PackageJson): string[] {
  const names = readdirSync(dir);
  const out = new Set<string>(['package.json']);
  for (const pattern of pkg.files ?? ['dist']) {
    const clean = pattern.replace(/^\.\//, '').replace(/\/+$/, '');
    if (clean.includes('/')) {
      if (existsSync(join(dir, clean))) out.add(clean);
      continue;
    }
    const re = new RegExp(
      `^${clean
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.')}$`,
    );
    for (const n of names) if (re.test(n)) out.add(n);
  }
  return [...out].filter((e) => existsSync(join(dir, e))).sort();
}

/** Copies the built workspace packages and their production dependency closure into `destRoot`. */
export function copyRepo(
  repoRoot: string,
  destRoot: string,
): { packages: string[]; dependencies: string[] } {
  const root = realpathSync(repoRoot);
  const done = new Set<string>();
  const packages: string[] = [];
  const dependencies: string[] = [];
  const dest = (p: string) => join(destRoot, relative(root, p));

  const addWorkspacePackage = (dir: string) => {
    if (done.has(dir)) return;
    done.add(dir);
    const pkg = readPackageJson(dir);
    if (!pkg) return;
    packages.push(relative(root, dir));
    for (const entry of publishedEntries(dir, pkg))
      copyTree(join(dir, entry), dest(join(dir, entry)));
    addDependencies(dir, pkg);
  };

  const addExternal = (dir: string) => {
    if (done.has(dir)) return;
    done.add(dir);
    dependencies.push(relative(root, dir));
    copyTree(dir, dest(dir), (name) => name === 'node_modules');
    const pkg = readPackageJson(dir);
    if (pkg) addDependencies(dir, pkg);
  };

  const addDependencies = (from: string, pkg: PackageJson) => {
    const names = Object.keys({
      ...pkg.peerDependencies,
      ...pkg.optionalDependencies,
      ...pkg.dependencies,
    });
    for (const name of names) {
      const found = findDependency(from, name);
      if (found === null) continue; // an optional or peer dependency that is not installed
      let link = found;
      let materialised = false;
      // Recreate pnpm's relative symlinks (node_modules/x -> ../.pnpm/x@1/node_modules/x); a link
      // that leaves the repo is replaced by a copy of what it points to.
      for (let hops = 0; lstatSync(link).isSymbolicLink(); hops++) {
        if (hops > 32) throw new Error(`symlink loop at ${link}`);
        const target = readlinkSync(link);
        const next = resolve(dirname(link), target);
        if (isAbsolute(target) || !inside(root, next)) {
          const real = realpathSync(link);
          copyTree(real, dest(link), (n) => n === 'node_modules');
          const dep = readPackageJson(real);
          if (dep) addDependencies(real, dep);
          materialised = true;
          break;
        }
        if (!lstatSyncSafe(dest(link))) {
          mkdirSync(dirname(dest(link)), { recursive: true });
          symlinkSync(target, dest(link));
        }
        link = next;
      }
      if (materialised) continue;
      if (relative(root, link).split(sep).includes('node_modules')) addExternal(link);
      else addWorkspacePackage(link);
    }
  };

  const findDependency = (from: string, name: string): string | null => {
    for (let d = from; inside(root, d); d = dirname(d)) {
      const p = join(d, 'node_modules', name);
      if (lstatSyncSafe(p)) return p;
      if (d === root) break;
    }
    return null;
  };

  for (const group of ['packages', 'apps']) {
    const base = join(root, group);
    if (!existsSync(base)) continue;
    for (const name of readdirSync(base).sort()) {
      const dir = join(base, name);
      if (existsSync(join(dir, 'package.json'))) addWorkspacePackage(dir);
    }
  }
  const rootPkg = join(root, 'package.json');
  if (existsSync(rootPkg)) copyFile(rootPkg, join(destRoot, 'package.json'));
  return { packages, dependencies };
}

function lstatSyncSafe(p: string) {
  try {
    return lstatSync(p);
  } catch {
    return null;
  }
}

/** A POSIX shell single-quoted word for `value`. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** The check script's settings as `NAME='value'` lines (sourced by dom0-run.sh). */
export function configEnv(settings: Readonly<Record<string, string>>): string {
  return Object.entries(settings)
    .map(([k, v]) => {
      if (!/^[A-Z_][A-Z0-9_]*$/.test(k)) throw new Error(`bad config name ${k}`);
      return `${k}=${shellQuote(v)}\n`;
    })
    .join('');
}

function treeBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = lstatSync(p);
    total += 4096;
    if (st.isDirectory()) total += treeBytes(p);
    else if (st.isFile()) total += Math.ceil(st.size / 4096) * 4096;
  }
  return total;
}

export interface ShareOptions {
  readonly runDir: string;
  readonly repoRoot: string;
  readonly vmChecksDir: string;
  readonly nodeBinary: string;
  /** The guest's kernel and initramfs. */
  readonly guestKernel: string;
  readonly guestInitrd: string;
}

export async function buildShare(opts: ShareOptions): Promise<Share & { packages: string[] }> {
  const shareDir = join(opts.runDir, 'share');
  const payloadDir = join(shareDir, 'payload');
  const outDir = join(shareDir, 'out');
  mkdirSync(outDir, { recursive: true });
  copyFile(realpathSync(opts.nodeBinary), join(payloadDir, 'node'));
  copyTree(opts.vmChecksDir, join(payloadDir, 'vm'));
  const { packages } = copyRepo(opts.repoRoot, join(payloadDir, 'repo'));
  copyFile(opts.guestKernel, join(shareDir, 'images', 'vmlinuz'));
  copyFile(opts.guestInitrd, join(shareDir, 'images', 'guest.cpio'));

  const diskPath = join(opts.runDir, 'payload.img');
  const kib = Math.ceil((treeBytes(payloadDir) * 1.2) / 1024) + 32 * 1024;
  writeFileSync(diskPath, '');
  truncateSync(diskPath, kib * 1024);
  await run(
    'mkfs.ext4',
    [
      '-q',
      '-F',
      '-O',
      '^has_journal',
      '-L',
      'xqpayload',
      '-E',
      'root_owner=0:0',
      '-d',
      payloadDir,
      diskPath,
    ],
    { timeoutMs: 180_000 },
  );
  return { shareDir, payloadDir, outDir, diskPath, packages };
}
