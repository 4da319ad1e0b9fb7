/** Cache folder and cache keys (pure, apart from hashing files someone else listed). */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * The cache folder: `$XENCONS_XEN_QEMU_CACHE`, else `$XDG_CACHE_HOME/xencons/xen-qemu`, else
 * `~/.cache/xencons/xen-qemu`. It lives outside the checkout and survives between runs.
 */
export function cacheRoot(env: NodeJS.ProcessEnv, home: string): string {
  if (env.XENCONS_XEN_QEMU_CACHE) return env.XENCONS_XEN_QEMU_CACHE;
  const base = env.XDG_CACHE_HOME ? env.XDG_CACHE_HOME : join(home, '.cache');
  return join(base, 'xencons', 'xen-qemu');
}

/** Inputs of one artifact: what it is built from. Order of keys does not matter. */
export type KeyInputs = Readonly<Record<string, string | number | readonly string[]>>;

function stable(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stable).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    );
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stable(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** A short hex key for `inputs`: equal inputs give equal keys, any change gives a new key. */
export function cacheKey(inputs: KeyInputs): string {
  return createHash('sha256').update(stable(inputs)).digest('hex').slice(0, 16);
}

/** Folder name of an artifact: `<kind>-<key>`. */
export function artifactName(kind: string, inputs: KeyInputs): string {
  return `${kind}-${cacheKey(inputs)}`;
}

/**
 * Hash of every file under `dir` (relative path, mode's executable bit and content), so a change
 * to any script that goes into an image changes that image's key.
 */
export function hashTree(dir: string): string {
  const h = createHash('sha256');
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else {
        h.update(`${relative(dir, p)}\0${st.mode & 0o111 ? 'x' : '-'}\0`);
        h.update(readFileSync(p));
        h.update('\0');
      }
    }
  };
  walk(dir);
  return h.digest('hex').slice(0, 16);
}
