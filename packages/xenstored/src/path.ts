/**
 * Node names as cxenstored 4.17 checks them (xen-protocols.md §1.6, §1.7): absolute, no trailing
 * or double slash, only `A-Za-z0-9-/_@`, and at most `pathMax` bytes below a leading
 * `/local/domain/<n>/`.
 */

const VALID = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-/_@') {
  VALID[c.charCodeAt(0)] = 1;
}

const LOCAL_DOMAIN = '/local/domain/';

/** Length of a leading `/local/domain/<up to 5 digits>/`, as `sscanf("%5u/%n")` measures it. */
function localOffset(path: string): number {
  if (!path.startsWith(LOCAL_DOMAIN)) return 0;
  let i = LOCAL_DOMAIN.length;
  // %5u skips white space and accepts a sign, but neither is a valid node character anyway.
  const start = i;
  while (i < path.length && i - start < 5) {
    const c = path.charCodeAt(i);
    if (c < 48 || c > 57) break;
    i++;
  }
  if (i === start || path.charCodeAt(i) !== 47) return 0;
  return i + 1;
}

/** `is_valid_nodename`: true when `path` is an acceptable absolute node name. */
export function isValidNodename(path: string, pathMax: number): boolean {
  if (path.charCodeAt(0) !== 47) return false;
  if (path.length > 1 && path.charCodeAt(path.length - 1) === 47) return false;
  if (path.includes('//')) return false;
  if (path.length > localOffset(path) + pathMax) return false;
  for (let i = 0; i < path.length; i++) {
    if (VALID[path.charCodeAt(i)] !== 1) return false;
  }
  return true;
}

/** The home of a domain, `/local/domain/<domid>`. */
export function domainPath(domid: number): string {
  return `/local/domain/${domid >>> 0}`;
}

/**
 * `canonicalize`: relative names are resolved against the connection's home; absolute names and
 * `@` names are returned unchanged.
 */
export function canonicalize(path: string, home: string): string {
  const c = path.charCodeAt(0);
  if (c === 47 || c === 64) return path;
  return `${home}/${path}`;
}

/** `get_parent`: `/a/b` → `/a`, `/a` → `/`. */
export function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash <= 0 ? '/' : path.slice(0, slash);
}

/** The last component of a path other than `/`. */
export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** `child_name`. */
export function childPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}

/** Number of components: `/` → 0, `/a/b` → 2. */
export function depthOf(path: string): number {
  if (path === '/') return 0;
  let n = 0;
  for (let i = 0; i < path.length; i++) if (path.charCodeAt(i) === 47) n++;
  return n;
}

/** `is_child`: `child` is `parent` or below it (everything is below `/`). */
export function isChildOrSelf(child: string, parent: string): boolean {
  if (parent === '/') return true;
  if (!child.startsWith(parent)) return false;
  return child.length === parent.length || child.charCodeAt(parent.length) === 47;
}
