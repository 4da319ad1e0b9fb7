/**
 * The image set, built from Debian packages into the cache folder as separate artifacts, each in
 * `<cache>/<kind>-<key>/` with a meta.json, where the key hashes what it is built from (package
 * versions, the vm/ scripts that go into it, the recipe version). A changed input rebuilds that
 * artifact and those built from it, nothing else.
 *
 *   xen          xen.elf: the hypervisor from xen-hypervisor-4.17-amd64, unzipped for multiboot
 *   kernel       vmlinuz + the module subsets of dom0 and of the guest, from linux-image-*-amd64
 *   dom0-rootfs  rootfs.cpio.zst: debootstrap minbase + xen-utils-4.17, xenstore-utils, busybox
 *   dom0-initrd  dom0.cpio: dom0-rootfs followed by an overlay (vm/dom0, modules)
 *   guest        guest.cpio: busybox-static, glibc/libstdc++ (for node), modules, vm/guest;
 *                uncompressed, as dom0's domain builder would gunzip it under emulation
 */
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { Apt, mirrorsFrom, replaceDir, SUITE, sourcesList } from './apt.js';
import { artifactName, hashTree, type KeyInputs } from './cache-key.js';
import { run, sh } from './exec.js';
import { progress, seconds } from './log.js';
import { loadOrder, moduleDepends, moduleName } from './modules.js';

/** Bump when the way an artifact is built changes (not its inputs). */
const RECIPE = { xen: 1, kernel: 1, rootfs: 2, initrd: 1, guest: 2 } as const;

/** Modules dom0 loads: the Xen devices, blkback, QEMU's virtio-9p share and virtio disk (ext4). */
export const DOM0_MODULES = [
  'xen-evtchn',
  'xen-gntdev',
  'xen-gntalloc',
  'xen-privcmd',
  'xenfs',
  'xen-blkback',
  'virtio_pci',
  'virtio_blk',
  '9pnet_virtio',
  '9p',
  'loop',
  'crc32c_generic',
  'ext4',
] as const;
/** Modules the guest loads: blkfront and ext4 (crc32c first: ext4's soft dependency). */
export const GUEST_MODULES = ['crc32c_generic', 'xen-blkfront', 'ext4'] as const;

const XEN_PKG = 'xen-hypervisor-4.17-amd64';
const ROOTFS_PKGS = ['xen-utils-4.17', 'xenstore-utils', 'busybox', 'kmod', 'procps'] as const;
const GUEST_PKGS = ['busybox-static', 'libc6', 'libstdc++6', 'libgcc-s1'] as const;

export interface Artifact {
  readonly kind: string;
  readonly dir: string;
  readonly cached: boolean;
  /** How long building it took, now or when it was built. */
  readonly buildMs: number;
}

export interface ImageSet {
  readonly xenElf: string;
  readonly vmlinuz: string;
  readonly dom0Initrd: string;
  readonly guestInitrd: string;
  readonly kernelVersion: string;
  readonly versions: Readonly<Record<string, string>>;
  readonly artifacts: readonly Artifact[];
  /** Wall time of this ensureImages call. */
  readonly elapsedMs: number;
}

interface Meta {
  readonly kind: string;
  readonly inputs: KeyInputs;
  readonly buildMs: number;
  readonly builtAt: string;
  readonly extra?: Record<string, string>;
}

function readMeta(dir: string): Meta | null {
  try {
    return JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as Meta;
  } catch {
    return null;
  }
}

/** Unmounts anything left mounted under `dir` (a killed debootstrap leaves /proc behind). */
async function unmountUnder(dir: string): Promise<void> {
  let mounts: string[];
  try {
    mounts = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[1] ?? '')
      .map((p) => p.replace(/\\040/g, ' '))
      .filter((p) => p === dir || p.startsWith(`${dir}/`))
      .sort((a, b) => b.length - a.length);
  } catch {
    return;
  }
  for (const m of mounts) await run('umount', ['-l', m], { timeoutMs: 30_000, allowFailure: true });
}

async function removeTree(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  await unmountUnder(dir);
  rmSync(dir, { recursive: true, force: true });
}

/** Exclusive use of the cache folder across processes (other runs may share it). */
export async function lockCache(cache: string, signal?: AbortSignal): Promise<() => void> {
  mkdirSync(cache, { recursive: true });
  const path = join(cache, 'lock');
  const deadline = Date.now() + 45 * 60_000;
  let told = false;
  for (;;) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => {
        try {
          if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path);
        } catch {
          // gone already
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let holder = 0;
    try {
      holder = Number(readFileSync(path, 'utf8').trim());
    } catch {
      continue;
    }
    let alive = holder > 0;
    if (alive) {
      try {
        process.kill(holder, 0);
      } catch (e) {
        alive = (e as NodeJS.ErrnoException).code === 'EPERM';
      }
    }
    if (!alive) {
      rmSync(path, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`cache ${cache} still locked by pid ${holder}`);
    if (signal?.aborted) throw new Error('aborted');
    if (!told) progress(`waiting for pid ${holder}, which is using the cache ${cache}`);
    told = true;
    await new Promise((r) => setTimeout(r, 2000));
  }
}

class Builder {
  readonly artifacts: Artifact[] = [];

  private prepared = false;

  constructor(
    readonly cache: string,
    readonly force: boolean,
    private readonly beforeBuild: () => Promise<void>,
  ) {}

  /** Returns the cached artifact for `inputs`, building it (atomically) when missing. */
  async artifact(
    kind: string,
    inputs: KeyInputs,
    what: string,
    build: (dir: string) => Promise<Record<string, string> | undefined>,
  ): Promise<{ dir: string; meta: Meta }> {
    const name = artifactName(kind, inputs);
    const dir = join(this.cache, name);
    const existing = this.force ? null : readMeta(dir);
    if (existing) {
      this.artifacts.push({ kind, dir, cached: true, buildMs: existing.buildMs });
      return { dir, meta: existing };
    }
    if (!this.prepared) {
      await this.beforeBuild();
      this.prepared = true;
    }
    progress(`building ${kind}: ${what}`);
    const tmp = join(this.cache, `.tmp-${name}-${process.pid}`);
    await removeTree(tmp);
    mkdirSync(tmp, { recursive: true });
    const t0 = Date.now();
    try {
      const extra = await build(tmp);
      const meta: Meta = {
        kind,
        inputs,
        buildMs: Date.now() - t0,
        builtAt: new Date().toISOString(),
        ...(extra ? { extra } : {}),
      };
      writeFileSync(join(tmp, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
      await removeTree(dir);
      replaceDir(tmp, dir);
      // Older builds of the same kind are dead weight now.
      for (const other of readdirSync(this.cache)) {
        if (
          other.startsWith(`${kind}-`) &&
          other !== name &&
          /^[0-9a-f]{16}$/.test(other.slice(kind.length + 1))
        ) {
          await removeTree(join(this.cache, other));
        }
      }
      progress(`built ${kind} in ${seconds(meta.buildMs)}`);
      this.artifacts.push({ kind, dir, cached: false, buildMs: meta.buildMs });
      return { dir, meta };
    } catch (err) {
      await removeTree(tmp);
      throw err;
    }
  }
}

function walkFiles(dir: string, out: string[] = [], base = dir): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = lstatSync(p);
    if (st.isDirectory()) walkFiles(p, out, base);
    else out.push(relative(base, p));
  }
  return out;
}

function copyInto(src: string, dest: string, mode?: number): void {
  mkdirSync(dirname(dest), { recursive: true });
  copyFileSync(src, dest);
  if (mode !== undefined) chmodSync(dest, mode);
}

/** Packs `dir` as a newc cpio, compressed by `compressor` (or not), into `out`. */
async function packCpio(
  dir: string,
  out: string,
  compressor: 'zstd' | 'gzip' | null,
): Promise<void> {
  const z = compressor === 'zstd' ? 'zstd -q -T0 -3' : compressor === 'gzip' ? 'gzip -6' : 'cat';
  await sh(
    `cd "$1" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet | ${z} > "$2"`,
    [dir, out],
    {
      timeoutMs: 600_000,
    },
  );
}

// biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax
const DPKG_QUERY_FORMAT = '${Package}=${Version}\n';

const CHROOT_ENV = {
  PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/root',
  LC_ALL: 'C',
  DEBIAN_FRONTEND: 'noninteractive',
};

export interface EnsureOptions {
  readonly cache: string;
  readonly vmDir: string;
  readonly force: boolean;
  readonly env: NodeJS.ProcessEnv;
  /** Runs once before the first artifact that has to be built (e.g. installs host tools). */
  readonly beforeBuild: () => Promise<void>;
}

/** Builds what is missing from the cache and returns the image set. Hold the cache lock. */
export async function ensureImages(opts: EnsureOptions): Promise<ImageSet> {
  const t0 = Date.now();
  const mirrors = mirrorsFrom(opts.env);
  const apt = new Apt(opts.cache, mirrors);
  await apt.update();
  const kernelPkgOf = () => apt.dependency('linux-image-amd64', 'linux-image-');
  let kernelPkg: string;
  let versions: Map<string, string>;
  const wanted = () => [XEN_PKG, ...ROOTFS_PKGS, ...GUEST_PKGS];
  try {
    kernelPkg = await kernelPkgOf();
    versions = await apt.versions([...wanted(), kernelPkg]);
  } catch {
    await apt.update(true);
    kernelPkg = await kernelPkgOf();
    versions = await apt.versions([...wanted(), kernelPkg]);
  }
  const v = (p: string) => versions.get(p)!;
  const b = new Builder(opts.cache, opts.force, opts.beforeBuild);

  // ---- xen ----
  const xen = await b.artifact(
    'xen',
    { recipe: RECIPE.xen, pkg: XEN_PKG, version: v(XEN_PKG) },
    `${XEN_PKG} ${v(XEN_PKG)}`,
    async (dir) => {
      const x = join(dir, 'x');
      await apt.fetchAndExtract(XEN_PKG, v(XEN_PKG), x);
      const gz = readdirSync(join(x, 'boot')).find((f) => /^xen-.*\.gz$/.test(f));
      if (!gz) throw new Error(`${XEN_PKG} has no boot/xen-*.gz`);
      await sh('gzip -dc "$1" > "$2"', [join(x, 'boot', gz), join(dir, 'xen.elf')], {
        timeoutMs: 60_000,
      });
      await removeTree(x);
      return { hypervisor: gz };
    },
  );

  // ---- kernel ----
  const kernelInputs = {
    recipe: RECIPE.kernel,
    pkg: kernelPkg,
    version: v(kernelPkg),
    dom0Modules: [...DOM0_MODULES],
    guestModules: [...GUEST_MODULES],
  };
  const kernel = await b.artifact(
    'kernel',
    kernelInputs,
    `${kernelPkg} ${v(kernelPkg)}`,
    async (dir) => {
      const x = join(dir, 'x');
      await apt.fetchAndExtract(kernelPkg, v(kernelPkg), x);
      const kv = readdirSync(join(x, 'lib/modules'))[0];
      if (!kv) throw new Error(`${kernelPkg} has no lib/modules/<version>`);
      const modRoot = join(x, 'lib/modules', kv);
      copyInto(join(x, 'boot', `vmlinuz-${kv}`), join(dir, 'vmlinuz'));
      const byName = new Map<string, string>();
      for (const rel of walkFiles(join(modRoot, 'kernel'))) {
        if (/\.ko(\.(xz|zst|gz))?$/.test(rel)) byName.set(moduleName(rel), `kernel/${rel}`);
      }
      const builtin = new Set(
        readFileSync(join(modRoot, 'modules.builtin'), 'utf8')
          .split('\n')
          .filter(Boolean)
          .map(moduleName),
      );
      const dependsOf = (name: string) => {
        if (builtin.has(name)) return [];
        const rel = byName.get(name);
        return rel ? moduleDepends(readFileSync(join(modRoot, rel))) : null;
      };
      for (const [set, list] of [
        ['dom0', DOM0_MODULES],
        ['guest', GUEST_MODULES],
      ] as const) {
        const order = loadOrder(list, dependsOf).filter((n) => !builtin.has(n));
        const rels = order.map((n) => byName.get(n)!);
        if (rels.some((r) => !r.endsWith('.ko')))
          throw new Error(`compressed modules are not handled: ${rels.join(' ')}`);
        for (const rel of rels) copyInto(join(modRoot, rel), join(dir, 'modules', rel));
        writeFileSync(join(dir, `${set}.modules`), `${rels.join('\n')}\n`);
      }
      await removeTree(x);
      return { kernelVersion: kv };
    },
  );
  const kernelVersion = kernel.meta.extra?.kernelVersion;
  if (!kernelVersion) throw new Error(`kernel artifact ${kernel.dir} has no kernelVersion`);

  // ---- dom0 rootfs ----
  const rootfsInputs = {
    recipe: RECIPE.rootfs,
    suite: SUITE,
    packages: ROOTFS_PKGS.map((p) => `${p}=${v(p)}`),
  };
  const rootfs = await b.artifact(
    'dom0-rootfs',
    rootfsInputs,
    `debootstrap ${SUITE} + ${ROOTFS_PKGS.join(' ')}`,
    async (dir) => {
      const root = join(dir, 'root');
      progress('  debootstrap --variant=minbase (about a minute or two)');
      await run('debootstrap', ['--variant=minbase', '--arch=amd64', SUITE, root, mirrors.debian], {
        timeoutMs: 30 * 60_000,
        env: { ...process.env, ...CHROOT_ENV },
      });
      writeFileSync(join(root, 'etc/apt/sources.list'), sourcesList(mirrors, null));
      writeFileSync(join(root, 'usr/sbin/policy-rc.d'), '#!/bin/sh\nexit 101\n', { mode: 0o755 });
      progress(`  apt-get install ${ROOTFS_PKGS.join(' ')} in the chroot`);
      await run('chroot', [root, 'apt-get', 'update', '-qq'], {
        timeoutMs: 600_000,
        env: CHROOT_ENV,
      });
      await run(
        'chroot',
        [
          root,
          'apt-get',
          'install',
          '-y',
          '-qq',
          '--no-install-recommends',
          ...ROOTFS_PKGS.map((p) => `${p}=${v(p)}`),
        ],
        { timeoutMs: 30 * 60_000, env: CHROOT_ENV },
      );
      const installed = await run(
        'chroot',
        [root, 'dpkg-query', '-W', '-f', DPKG_QUERY_FORMAT, ...ROOTFS_PKGS],
        {
          timeoutMs: 60_000,
          env: CHROOT_ENV,
        },
      );
      await run('chroot', [root, 'apt-get', 'clean'], { timeoutMs: 60_000, env: CHROOT_ENV });
      await unmountUnder(root);
      // Python comes with xen-utils for tools nothing here runs (pygrub, xencov_split); without
      // it the initramfs is a fifth smaller, and unpacking it under emulation is a boot's
      // slowest step.
      await sh(
        'rm -rf "$1"/usr/lib/python3* "$1"/usr/lib/x86_64-linux-gnu/libpython3* "$1"/usr/bin/python3*',
        [root],
        {
          timeoutMs: 60_000,
        },
      );
      for (const p of [
        'usr/share/doc',
        'usr/share/man',
        'usr/share/info',
        'usr/share/locale',
        'var/lib/apt/lists',
        'var/cache/apt',
        'var/cache/debconf',
      ]) {
        rmSync(join(root, p), { recursive: true, force: true });
      }
      mkdirSync(join(root, 'var/lib/apt/lists/partial'), { recursive: true });
      mkdirSync(join(root, 'var/cache/apt/archives/partial'), { recursive: true });
      writeFileSync(join(root, 'etc/hostname'), 'dom0\n');
      progress('  packing rootfs.cpio.zst');
      await packCpio(root, join(dir, 'rootfs.cpio.zst'), 'zstd');
      await removeTree(root);
      return { installed: installed.stdout.trim().replace(/\n/g, ' ') };
    },
  );

  // ---- dom0 initrd: the rootfs, then an overlay with /init, the modules and settings ----
  const initrdInputs = {
    recipe: RECIPE.initrd,
    rootfs: relative(opts.cache, rootfs.dir),
    kernel: relative(opts.cache, kernel.dir),
    vmDom0: hashTree(join(opts.vmDir, 'dom0')),
  };
  const initrd = await b.artifact(
    'dom0-initrd',
    initrdInputs,
    'rootfs + vm/dom0 overlay',
    async (dir) => {
      const ov = join(dir, 'overlay');
      const vm = join(opts.vmDir, 'dom0');
      copyInto(join(vm, 'init'), join(ov, 'init'), 0o755);
      copyInto(join(vm, 'motd'), join(ov, 'etc/xq/motd'));
      copyInto(join(vm, 'profile.sh'), join(ov, 'etc/profile.d/xq.sh'), 0o644);
      // Modules under usr/lib: with merged /usr the rootfs's /lib is a symlink, and an overlay
      // entry for a real `lib` folder would replace it.
      const rels = readFileSync(join(kernel.dir, 'dom0.modules'), 'utf8')
        .split('\n')
        .filter(Boolean);
      for (const rel of rels)
        copyInto(join(kernel.dir, 'modules', rel), join(ov, 'usr/lib/modules', kernelVersion, rel));
      writeFileSync(join(ov, 'etc/xq/modules.list'), `${rels.join('\n')}\n`);
      await packCpio(ov, join(dir, 'overlay.cpio.zst'), 'zstd');
      await removeTree(ov);
      // Linux unpacks concatenated (separately compressed) cpio archives in order.
      await sh(
        'cat "$1" "$2" > "$3"',
        [
          join(rootfs.dir, 'rootfs.cpio.zst'),
          join(dir, 'overlay.cpio.zst'),
          join(dir, 'dom0.cpio'),
        ],
        {
          timeoutMs: 120_000,
        },
      );
      return undefined;
    },
  );

  // ---- guest ----
  const guestInputs = {
    recipe: RECIPE.guest,
    kernel: relative(opts.cache, kernel.dir),
    packages: GUEST_PKGS.map((p) => `${p}=${v(p)}`),
    vmGuest: hashTree(join(opts.vmDir, 'guest')),
  };
  const guest = await b.artifact(
    'guest',
    guestInputs,
    `busybox-static + glibc + vm/guest`,
    async (dir) => {
      const root = join(dir, 'root');
      for (const p of ['libc6', 'libstdc++6', 'libgcc-s1'])
        await apt.fetchAndExtract(p, v(p), root);
      for (const p of [
        'usr/share',
        'usr/lib/x86_64-linux-gnu/gconv',
        'etc',
        'usr/bin',
        'usr/sbin',
        'sbin',
        'usr/libexec',
      ]) {
        rmSync(join(root, p), { recursive: true, force: true });
      }
      const bb = join(dir, 'bb');
      await apt.fetchAndExtract('busybox-static', v('busybox-static'), bb);
      copyInto(join(bb, 'bin/busybox'), join(root, 'bin/busybox'), 0o755);
      await removeTree(bb);
      const applets = await run(join(root, 'bin/busybox'), ['--list'], { timeoutMs: 30_000 });
      for (const a of applets.stdout.split('\n').filter(Boolean)) {
        const link = join(root, 'bin', a);
        if (!existsSync(link)) symlinkSync('busybox', link);
      }
      for (const d of ['dev', 'proc', 'sys', 'tmp', 'mnt/payload', 'root', 'etc/xq'])
        mkdirSync(join(root, d), { recursive: true });
      copyInto(join(opts.vmDir, 'guest/init'), join(root, 'init'), 0o755);
      copyInto(join(opts.vmDir, 'guest/profile'), join(root, 'etc/profile'), 0o644);
      writeFileSync(join(root, 'etc/hostname'), 'guest\n');
      const rels = readFileSync(join(kernel.dir, 'guest.modules'), 'utf8')
        .split('\n')
        .filter(Boolean);
      for (const rel of rels)
        copyInto(join(kernel.dir, 'modules', rel), join(root, 'lib/modules', rel));
      writeFileSync(join(root, 'etc/xq/modules.list'), `${rels.join('\n')}\n`);
      await packCpio(root, join(dir, 'guest.cpio'), null);
      await removeTree(root);
      return undefined;
    },
  );

  return {
    xenElf: join(xen.dir, 'xen.elf'),
    vmlinuz: join(kernel.dir, 'vmlinuz'),
    dom0Initrd: join(initrd.dir, 'dom0.cpio'),
    guestInitrd: join(guest.dir, 'guest.cpio'),
    kernelVersion,
    versions: Object.fromEntries(versions),
    artifacts: b.artifacts,
    elapsedMs: Date.now() - t0,
  };
}
