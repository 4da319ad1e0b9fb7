/**
 * A private apt view of Debian bookworm (its own sources, lists and status under the cache
 * folder), so the image set comes from Debian's packages whatever the host's apt is set up for,
 * and package versions can be asked without touching the host's apt state.
 */
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { run } from './exec.js';
import { progress } from './log.js';

export const SUITE = 'bookworm';
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
const LISTS_MAX_AGE_MS = 12 * 3600 * 1000;

export interface Mirrors {
  readonly debian: string;
  readonly security: string;
}

/**
 * The Debian archive to build from: `XENCONS_DEBIAN_MIRROR` / `XENCONS_DEBIAN_SECURITY_MIRROR`,
 * else the archive this host's own apt uses (its sources.list and deb822 `.sources` files), so the
 * harness reaches Debian the same way `apt-get` does here.
 */
export function mirrorsFrom(env: NodeJS.ProcessEnv, hostSources = readHostSources()): Mirrors {
  const found = mirrorsFromSources(hostSources);
  const debian = env.XENCONS_DEBIAN_MIRROR || found.debian;
  const security = env.XENCONS_DEBIAN_SECURITY_MIRROR || found.security;
  if (!debian || !security) {
    throw new Error(
      "no Debian archive found in this host's apt sources (/etc/apt/sources.list*); set XENCONS_DEBIAN_MIRROR and XENCONS_DEBIAN_SECURITY_MIRROR",
    );
  }
  return { debian, security };
}

/** The text of every apt sources file of this host (one-line and deb822 formats). */
export function readHostSources(dir = '/etc/apt'): string {
  const files = [join(dir, 'sources.list')];
  try {
    for (const f of readdirSync(join(dir, 'sources.list.d'))) {
      if (f.endsWith('.list') || f.endsWith('.sources')) files.push(join(dir, 'sources.list.d', f));
    }
  } catch {
    // no sources.list.d
  }
  return files
    .map((f) => {
      try {
        return readFileSync(f, 'utf8');
      } catch {
        return '';
      }
    })
    .join('\n\n');
}

/** Finds the main and security archive URIs of Debian `deb` entries in apt sources text. */
export function mirrorsFromSources(text: string): { debian?: string; security?: string } {
  const entries: { uris: string[]; suites: string[] }[] = [];
  // One-line format: deb [options] URI SUITE COMPONENTS...
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
    if (m) entries.push({ uris: [m[1]!], suites: [m[2]!] });
  }
  // deb822 format: stanzas separated by blank lines with Types/URIs/Suites fields.
  for (const stanza of text.split(/\n\s*\n/)) {
    const field = (name: string) =>
      new RegExp(`^${name}:\\s*(.+)$`, 'mi')
        .exec(stanza.replace(/^#.*$/gm, ''))?.[1]
        ?.trim()
        .split(/\s+/) ?? [];
    if (!field('Types').includes('deb')) continue;
    entries.push({ uris: field('URIs'), suites: field('Suites') });
  }
  const result: { debian?: string; security?: string } = {};
  for (const e of entries) {
    const uri = e.uris[0]?.replace(/\/+$/, '');
    if (!uri) continue;
    if (e.suites.some((s) => s.endsWith('-security'))) result.security ??= uri;
    else if (e.suites.some((s) => /^[a-z]+(-updates)?$/.test(s))) result.debian ??= uri;
  }
  return result;
}

/** sources.list lines for bookworm, its updates and its security updates. */
export function sourcesList(m: Mirrors, signedBy: string | null): string {
  const opt = signedBy ? `[signed-by=${signedBy}] ` : '';
  return [
    `deb ${opt}${m.debian} ${SUITE} main`,
    `deb ${opt}${m.debian} ${SUITE}-updates main`,
    `deb ${opt}${m.security} ${SUITE}-security main`,
    '',
  ].join('\n');
}

/** Parses `apt-cache policy` output into package → candidate version (packages without one are left out). */
export function parsePolicy(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let pkg: string | null = null;
  for (const line of text.split('\n')) {
    const head = /^(\S+):$/.exec(line);
    if (head) {
      pkg = head[1]!;
      continue;
    }
    const cand = /^\s+Candidate:\s+(\S+)/.exec(line);
    if (cand && pkg && cand[1] !== '(none)') out.set(pkg, cand[1]!);
  }
  return out;
}

export class Apt {
  private readonly dir: string;
  private updated = false;

  constructor(
    cacheDir: string,
    private readonly mirrors: Mirrors,
  ) {
    this.dir = join(cacheDir, 'apt');
    for (const d of [
      'state/lists/partial',
      'cache/archives/partial',
      'etc/apt.conf.d',
      'etc/preferences.d',
      'etc/sources.list.d',
    ]) {
      mkdirSync(join(this.dir, d), { recursive: true });
    }
    writeFileSync(join(this.dir, 'state/status'), '');
    writeFileSync(join(this.dir, 'etc/sources.list'), sourcesList(mirrors, KEYRING));
  }

  private options(): string[] {
    const d = this.dir;
    return [
      '-o',
      `Dir::State=${d}/state`,
      '-o',
      `Dir::State::status=${d}/state/status`,
      '-o',
      `Dir::Cache=${d}/cache`,
      '-o',
      `Dir::Etc=${d}/etc`,
      '-o',
      `Dir::Etc::SourceList=${d}/etc/sources.list`,
      '-o',
      `Dir::Etc::SourceParts=${d}/etc/sources.list.d`,
      '-o',
      'APT::Architecture=amd64',
      '-o',
      'APT::Architectures=amd64',
      '-o',
      'APT::Sandbox::User=root',
      '-o',
      'Debug::NoLocking=1',
      '-o',
      'Acquire::Languages=none',
    ];
  }

  private listsAgeMs(): number {
    const lists = join(this.dir, 'state/lists');
    const files = readdirSync(lists).filter((f) => f.endsWith('_Packages'));
    if (files.length === 0) return Number.POSITIVE_INFINITY;
    return Date.now() - Math.min(...files.map((f) => statSync(join(lists, f)).mtimeMs));
  }

  /** Refreshes the package lists when missing, older than 12 h, or when `force`. */
  async update(force = false): Promise<void> {
    if (this.updated) return;
    const age = this.listsAgeMs();
    if (!force && age < LISTS_MAX_AGE_MS) return;
    progress(`apt: updating Debian ${SUITE} package lists (${this.mirrors.debian})`);
    try {
      await run('apt-get', [...this.options(), 'update', '-qq'], { timeoutMs: 300_000 });
      this.updated = true;
    } catch (err) {
      if (age === Number.POSITIVE_INFINITY) throw err;
      progress(
        `apt: update failed, using the lists from ${Math.round(age / 3600_000)} h ago: ${(err as Error).message.split('\n')[0]}`,
      );
    }
  }

  /** Candidate versions of `pkgs`; throws naming any package without one. */
  async versions(pkgs: readonly string[]): Promise<Map<string, string>> {
    const r = await run('apt-cache', [...this.options(), 'policy', ...pkgs], { timeoutMs: 60_000 });
    const found = parsePolicy(r.stdout);
    const missing = pkgs.filter((p) => !found.has(p));
    if (missing.length > 0)
      throw new Error(`no Debian ${SUITE} candidate for: ${missing.join(' ')}`);
    return found;
  }

  /** The versioned kernel package behind a metapackage (linux-image-amd64 → linux-image-6.1.0-NN-amd64). */
  async dependency(meta: string, prefix: string): Promise<string> {
    const r = await run('apt-cache', [...this.options(), 'depends', meta], { timeoutMs: 60_000 });
    for (const line of r.stdout.split('\n')) {
      const m = /^\s+Depends:\s+(\S+)/.exec(line);
      if (m?.[1]?.startsWith(prefix)) return m[1];
    }
    throw new Error(`${meta} has no dependency starting with ${prefix}`);
  }

  /** Downloads `pkg` at `version` and unpacks it (dpkg-deb -x) into `dest`. */
  async fetchAndExtract(pkg: string, version: string, dest: string): Promise<void> {
    const tmp = mkdtempSync(join(this.dir, 'dl-'));
    try {
      const get = () =>
        run('apt-get', [...this.options(), 'download', '-qq', `${pkg}=${version}`], {
          timeoutMs: 600_000,
          cwd: tmp,
        });
      try {
        await get();
      } catch {
        // Stale lists name a version the mirror no longer has: refresh once and retry.
        await this.update(true);
        await get();
      }
      const deb = readdirSync(tmp).find((f) => f.endsWith('.deb'));
      if (!deb) throw new Error(`apt-get download ${pkg}=${version} produced no .deb`);
      mkdirSync(dest, { recursive: true });
      await run('dpkg-deb', ['-x', join(tmp, deb), dest], { timeoutMs: 300_000 });
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
}

/** Moves `from` to `to` atomically, replacing an older `to`. */
export function replaceDir(from: string, to: string): void {
  rmSync(to, { recursive: true, force: true });
  renameSync(from, to);
}
