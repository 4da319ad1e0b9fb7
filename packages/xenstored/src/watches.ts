import { isChildOrSelf, parentOf } from './path.js';

/** Up to this many watched paths, a change is matched by comparing them all. */
const FEW_PATHS = 16;
const NONE: readonly never[] = Object.freeze([]);

/** What a watch needs of its connection. */
export interface WatchOwner {
  /** Registration order of connections, for cxenstored's event order. */
  readonly seq: number;
}

export interface Watch<C extends WatchOwner = WatchOwner> {
  readonly conn: C;
  /** Absolute path, or a special `@` name. */
  readonly path: string;
  readonly token: string;
  /** The connection's home when registered with a relative path: events are reported relative. */
  readonly relativeTo: string | null;
  readonly seq: number;
}

/** Event path as the watcher registered it (`get_watch_path`). */
export function eventPath(watch: Watch, path: string): string {
  if (watch.relativeTo === null) return path;
  let out = path.slice(watch.relativeTo.length);
  if (out.charCodeAt(0) === 47) out = out.slice(1);
  return out;
}

/**
 * Every watch of every connection, indexed by watched path: a change to P looks up P and each of
 * its ancestors (cxenstored's `is_child`), so the cost is the depth of P, not the number of watches.
 */
export class WatchIndex<C extends WatchOwner> {
  readonly #byPath = new Map<string, Watch<C>[]>();
  #seq = 0;
  count = 0;

  add(conn: C, path: string, token: string, relativeTo: string | null): Watch<C> {
    const watch: Watch<C> = { conn, path, token, relativeTo, seq: ++this.#seq };
    const list = this.#byPath.get(path);
    if (list === undefined) this.#byPath.set(path, [watch]);
    else list.push(watch);
    this.count++;
    return watch;
  }

  remove(watch: Watch<C>): void {
    const list = this.#byPath.get(watch.path);
    if (list === undefined) return;
    const i = list.indexOf(watch);
    if (i < 0) return;
    list.splice(i, 1);
    if (list.length === 0) this.#byPath.delete(watch.path);
    this.count--;
  }

  /**
   * Watches a change to `path` triggers: exact ones only for `exact` (descendants removed by a
   * recursive RM, special events), else the path's own and its ancestors'. Ordered by connection,
   * then registration, as cxenstored walks them.
   */
  match(path: string, exact: boolean): readonly Watch<C>[] {
    const byPath = this.#byPath;
    if (byPath.size === 0) return NONE;
    const out: Watch<C>[] = [];
    if (exact || path.charCodeAt(0) !== 47) {
      const own = byPath.get(path);
      if (own !== undefined) out.push(...own);
    } else if (byPath.size <= FEW_PATHS) {
      // A few watched paths (dom0's usual case): compare them instead of hashing every ancestor.
      for (const [watched, list] of byPath) if (isChildOrSelf(path, watched)) out.push(...list);
    } else {
      let p = path;
      for (;;) {
        const list = byPath.get(p);
        if (list !== undefined) out.push(...list);
        if (p === '/') break;
        p = parentOf(p);
      }
    }
    if (out.length > 1) out.sort((a, b) => a.conn.seq - b.conn.seq || a.seq - b.seq);
    return out;
  }
}
