/**
 * Permission strings (xen-protocols.md §1.8): one letter and a domid, `n0`, `r1`, `w2`, `b3`.
 * The first entry names the owner and its letter is the access of every domain not listed.
 */

export type XsAccess = 'none' | 'read' | 'write' | 'both';

export interface XsPermEntry {
  readonly domid: number;
  readonly access: XsAccess;
}

/** A node's permission list: owner, the default for everyone else, then per-domain entries. */
export interface XsAcl {
  /** Domain that owns the node (always has read and write). */
  readonly owner: number;
  /** Access of domains not listed in `entries` (the first entry's letter). */
  readonly others: XsAccess;
  /** Later entries, in order; the first whose domid matches the caller decides. */
  readonly entries: readonly XsPermEntry[];
}

const LETTER_TO_ACCESS: Readonly<Record<string, XsAccess>> = {
  n: 'none',
  r: 'read',
  w: 'write',
  b: 'both',
};

export const XS_ACCESS_LETTER: Readonly<Record<XsAccess, 'n' | 'r' | 'w' | 'b'>> = {
  none: 'n',
  read: 'r',
  write: 'w',
  both: 'b',
};

/** Largest domid a permission may name (DOMID_MASK). */
const MAX_DOMID = 0xffff;

/**
 * Parses one permission string as libxenstore does (`strtol(p, &end, 0)`: decimal, `0x` hex or
 * leading-0 octal; the whole rest must be the number). `undefined` when malformed.
 */
export function parsePerm(text: string): XsPermEntry | undefined {
  const access = LETTER_TO_ACCESS[text.charAt(0)];
  if (access === undefined) return undefined;
  const num = text.slice(1);
  let domid: number;
  if (/^[+]?0[xX][0-9a-fA-F]+$/.test(num))
    domid = Number.parseInt(num.replace(/^[+]?0[xX]/, ''), 16);
  else if (/^[+]?0[0-7]+$/.test(num)) domid = Number.parseInt(num.replace(/^[+]?0/, ''), 8);
  else if (/^[+]?(0|[1-9][0-9]*)$/.test(num)) domid = Number.parseInt(num.replace(/^\+/, ''), 10);
  else return undefined;
  if (!Number.isSafeInteger(domid) || domid > MAX_DOMID) return undefined;
  return { domid, access };
}

/** Formats one entry: `{ domid: 5, access: 'read' }` → `r5` (decimal, as `%i`). */
export function formatPerm(entry: XsPermEntry): string {
  return `${XS_ACCESS_LETTER[entry.access]}${entry.domid}`;
}

/** Parses a permission list (at least one entry). `undefined` when empty or any entry is bad. */
export function parseAcl(strings: readonly string[]): XsAcl | undefined {
  if (strings.length === 0) return undefined;
  const entries: XsPermEntry[] = [];
  for (const s of strings) {
    const e = parsePerm(s);
    if (e === undefined) return undefined;
    entries.push(e);
  }
  const [first, ...rest] = entries as [XsPermEntry, ...XsPermEntry[]];
  return { owner: first.domid, others: first.access, entries: rest };
}

/** Formats an ACL as the list of permission strings SET_PERMS takes. */
export function formatAcl(acl: XsAcl): string[] {
  return [
    formatPerm({ domid: acl.owner, access: acl.others }),
    ...acl.entries.map((e) => formatPerm(e)),
  ];
}

/** Shorthand: `acl(0, 'read', { 5: 'both' })` or with an entry array. */
export function acl(
  owner: number,
  others: XsAccess = 'none',
  entries: readonly XsPermEntry[] | Readonly<Record<number, XsAccess>> = [],
): XsAcl {
  const list = Array.isArray(entries)
    ? (entries as readonly XsPermEntry[])
    : Object.entries(entries as Record<string, XsAccess>).map(([d, a]) => ({
        domid: Number(d),
        access: a,
      }));
  return { owner, others, entries: list };
}
