/**
 * Path rules (xen-protocols.md §1.7): characters `A-Z a-z 0-9 - / _ @`; absolute paths start with
 * `/`, never end with `/` (except `/` itself) and never contain `//`; relative paths are resolved
 * against the caller's `/local/domain/<domid>`; `@…` names are special watch paths.
 */
import { XENSTORE_ABS_PATH_MAX, XENSTORE_REL_PATH_MAX } from './types.js';

const VALID_CHARS = /^[A-Za-z0-9\-/_@]*$/;

/** `@introduceDomain` / `@releaseDomain` and any other `@` name. */
export function isSpecialPath(path: string): boolean {
  return path.startsWith('@');
}

/**
 * Why `path` is not a valid node path, or `null` if it is. Special `@` paths are accepted only
 * when `allowSpecial` is set (watches and their permissions).
 */
export function pathProblem(path: string, options: { allowSpecial?: boolean } = {}): string | null {
  if (path.length === 0) return 'empty path';
  if (path.startsWith('@')) {
    if (!options.allowSpecial) return 'special @ paths are only for watches';
    return VALID_CHARS.test(path) ? null : 'invalid character';
  }
  if (!VALID_CHARS.test(path)) return 'invalid character (allowed: A-Z a-z 0-9 - / _ @)';
  const absolute = path.startsWith('/');
  if (absolute ? path.length > XENSTORE_ABS_PATH_MAX : path.length > XENSTORE_REL_PATH_MAX) {
    return `longer than ${absolute ? XENSTORE_ABS_PATH_MAX : XENSTORE_REL_PATH_MAX} bytes`;
  }
  if (path.includes('//')) return 'contains //';
  if (path.length > 1 && path.endsWith('/')) return 'ends with /';
  return null;
}

/** True when `path` is `parent` or below it (`/a` covers `/a` and `/a/b`, not `/ab`). */
export function isSubpath(parent: string, path: string): boolean {
  if (parent === '/') return path.startsWith('/');
  return path === parent || path.startsWith(`${parent}/`);
}

/** `/local/domain/<domid>`, the home of a domain. */
export function domainPath(domid: number): string {
  return `/local/domain/${domid}`;
}

/** Joins path segments with `/` (`joinPath('/a', 'b')` → `/a/b`, `joinPath('/', 'b')` → `/b`). */
export function joinPath(base: string, ...segments: string[]): string {
  let out = base;
  for (const seg of segments) out = out === '/' ? `/${seg}` : `${out}/${seg}`;
  return out;
}
