import { strtol } from './c-number.js';

/** Permission bits of `struct xs_permissions` (xenstore_lib.h). */
export const PERM_NONE = 0;
export const PERM_READ = 1;
export const PERM_WRITE = 2;
export const PERM_OWNER = 8;
/** Set on entries naming a domain that does not exist; they match nobody. */
export const PERM_IGNORE = 0x10;

/** One entry: `r5` is `{ id: 5, perms: PERM_READ }`. */
export interface PermEntry {
  readonly id: number;
  readonly perms: number;
}

/** A node's permission list; entry 0 names the owner and the default access. Shared, never mutated. */
export type Perms = readonly PermEntry[];

const LETTER: Record<number, string> = { 0: 'n', 1: 'r', 2: 'w', 3: 'b' };

/** `xs_perm_to_string`: `b5`, `n0`; the id is printed as a signed `%i`. */
export function permToString(entry: PermEntry): string {
  return `${LETTER[entry.perms & 3]}${entry.id | 0}`;
}

/** The GET_PERMS payload: every entry followed by a NUL. */
export function permsToPayload(perms: Perms): string {
  let out = '';
  for (const p of perms) out += `${permToString(p)}\0`;
  return out;
}

/**
 * `xs_strings_to_perms` over `count` NUL-terminated strings starting at `text[start]`: a letter
 * `r`, `w`, `b` or `n` and an id parsed by `strtol(.., 0)`; anything else is `null` (EINVAL).
 */
export function parsePerms(text: string, start: number, count: number): PermEntry[] | null {
  const out: PermEntry[] = [];
  let p = start;
  for (let i = 0; i < count; i++) {
    let bits: number;
    switch (text.charCodeAt(p)) {
      case 114:
        bits = PERM_READ;
        break;
      case 119:
        bits = PERM_WRITE;
        break;
      case 98:
        bits = PERM_READ | PERM_WRITE;
        break;
      case 110:
        bits = PERM_NONE;
        break;
      default:
        return null;
    }
    p++;
    const nul = text.indexOf('\0', p);
    if (nul === p || nul < 0) return null;
    const { value, end } = strtol(text, p, 0);
    // `*end` must be the NUL; with no digits at all strtol leaves end at p.
    if (end !== nul) return null;
    out.push({ id: Number(BigInt.asUintN(32, value)), perms: bits });
    p = nul + 1;
  }
  return out;
}

/** What a caller may do with a node; the caller's identity as `perm_for_conn` sees it. */
export interface Caller {
  readonly domid: number;
  readonly privileged: boolean;
  /** Domid this caller's domain was made the device model of (SET_TARGET), or -1. */
  readonly target: number;
}

/**
 * `perm_for_conn`: privileged callers, the owner and the owner's device model get everything;
 * else the first matching later entry; else entry 0's bits. `ignored(i)` tells whether entry i
 * names a domain that no longer exists (entry 0 is never ignored here).
 */
export function permFor(
  caller: Caller,
  perms: Perms,
  ignored: (entry: PermEntry) => boolean,
): number {
  const all = PERM_READ | PERM_WRITE | PERM_OWNER;
  const owner = perms[0];
  if (owner === undefined) return PERM_NONE;
  if (
    caller.privileged ||
    owner.id === caller.domid ||
    (caller.target >= 0 && owner.id === caller.target)
  ) {
    return all;
  }
  for (let i = 1; i < perms.length; i++) {
    const p = perms[i]!;
    if (
      (p.perms & PERM_IGNORE) === 0 &&
      (p.id === caller.domid || (caller.target >= 0 && p.id === caller.target)) &&
      !ignored(p)
    ) {
      return p.perms & all;
    }
  }
  return owner.perms & all;
}
