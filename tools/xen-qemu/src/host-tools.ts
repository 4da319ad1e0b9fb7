/** Host tools the harness runs, installed with apt-get when missing (as root), else a clear error. */
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { run } from './exec.js';
import { progress } from './log.js';

export interface HostTool {
  /** A command looked up on PATH, or an absolute path that must exist. */
  readonly need: string;
  /** The Debian/Ubuntu package that provides it. */
  readonly pkg: string;
  /** Only needed to build images (a run with a warm cache does without). */
  readonly buildOnly: boolean;
}

export const HOST_TOOLS: readonly HostTool[] = [
  { need: 'qemu-system-x86_64', pkg: 'qemu-system-x86', buildOnly: false },
  { need: 'mkfs.ext4', pkg: 'e2fsprogs', buildOnly: false },
  { need: 'debootstrap', pkg: 'debootstrap', buildOnly: true },
  { need: 'cpio', pkg: 'cpio', buildOnly: true },
  { need: 'zstd', pkg: 'zstd', buildOnly: true },
  { need: 'gzip', pkg: 'gzip', buildOnly: true },
  { need: 'dpkg-deb', pkg: 'dpkg', buildOnly: true },
  { need: 'apt-get', pkg: 'apt', buildOnly: false },
  {
    need: '/usr/share/keyrings/debian-archive-keyring.gpg',
    pkg: 'debian-archive-keyring',
    buildOnly: false,
  },
];

/** Adds the sbin folders, where mkfs.ext4 and debootstrap live, to PATH for this process. */
export function widenPath(env: NodeJS.ProcessEnv): void {
  const parts = (env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const p of ['/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin', '/bin']) {
    if (!parts.includes(p)) parts.push(p);
  }
  env.PATH = parts.join(delimiter);
}

export function findCommand(cmd: string, env: NodeJS.ProcessEnv = process.env): string | null {
  if (cmd.startsWith('/')) return existsSync(cmd) ? cmd : null;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** The packages providing the tools that are missing (deduplicated). */
export function missingPackages(tools: readonly HostTool[], find = findCommand): string[] {
  return [...new Set(tools.filter((t) => find(t.need) === null).map((t) => t.pkg))];
}

export class HostToolsError extends Error {
  override readonly name = 'HostToolsError';
}

/** Installs missing host tools with apt-get when root; otherwise throws with the command to run. */
export async function ensureHostTools(forBuild: boolean): Promise<void> {
  const tools = HOST_TOOLS.filter((t) => forBuild || !t.buildOnly);
  const missing = missingPackages(tools);
  if (missing.length === 0) return;
  if (!isRoot()) {
    throw new HostToolsError(
      `missing host packages: ${missing.join(' ')}\n` +
        `install them with: sudo apt-get install -y --no-install-recommends ${missing.join(' ')}` +
        (forBuild ? '\n(building the image set also needs root: debootstrap and chroot)' : ''),
    );
  }
  if (findCommand('apt-get') === null) {
    throw new HostToolsError(
      `missing host tools (${missing.join(' ')}) and no apt-get to install them`,
    );
  }
  progress(`installing host packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await run('apt-get', ['update', '-qq'], { timeoutMs: 300_000, env, output: 'stderr' });
  await run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
    timeoutMs: 900_000,
    env,
    output: 'stderr',
  });
  const still = missingPackages(tools);
  if (still.length > 0) throw new HostToolsError(`still missing after apt-get: ${still.join(' ')}`);
}
