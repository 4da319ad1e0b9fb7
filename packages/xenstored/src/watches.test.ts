import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isChildOrSelf } from './path.js';
import { WatchIndex } from './watches.js';

const segment = fc.constantFrom('a', 'b', 'c', 'ab');
const nodePath = fc
  .array(segment, { minLength: 0, maxLength: 4 })
  .map((parts) => `/${parts.join('/')}`);
const watchPath = fc.oneof(nodePath, fc.constantFrom('@introduceDomain', '@releaseDomain'));

/** What `match` must return: every watch on the path (exact) or on it and its ancestors. */
function expected(
  watches: { conn: { seq: number }; path: string; seq: number }[],
  path: string,
  exact: boolean,
) {
  return watches
    .filter((w) =>
      exact || path.charCodeAt(0) !== 47 ? w.path === path : isChildOrSelf(path, w.path),
    )
    .sort((a, b) => a.conn.seq - b.conn.seq || a.seq - b.seq);
}

describe('WatchIndex.match', () => {
  it('finds the same watches, in the same order, with few and with many watched paths', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 3 }), watchPath), { maxLength: 60 }),
        fc.array(fc.tuple(nodePath, fc.boolean()), { minLength: 1, maxLength: 10 }),
        (adds, changes) => {
          const conns = [1, 2, 3].map((seq) => ({ seq }));
          const index = new WatchIndex<{ seq: number }>();
          const all = adds.map(([c, p], i) => index.add(conns[c - 1]!, p, `t${i}`, null));
          for (const [path, exact] of changes) {
            expect(index.match(path, exact)).toEqual(expected(all, path, exact));
          }
          for (const w of all.slice(0, all.length >> 1)) index.remove(w);
          const left = all.slice(all.length >> 1);
          for (const [path, exact] of changes) {
            expect(index.match(path, exact)).toEqual(expected(left, path, exact));
          }
          expect(index.count).toBe(left.length);
        },
      ),
    );
  });
});
