import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TestClient } from '../test/client.js';
import { startXenstored } from './server.js';

// Random sequences of changes, directly and in transactions (committed, aborted or conflicting),
// by dom0 and by a guest: afterwards the tree, its path index, the owner counts and the memory
// accounting must still agree (CONTROL `check`), and nothing may be charged for what is gone.
const segment = fc.constantFrom('a', 'b', 'c', 'long-name-of-a-node');
const path = fc
  .array(segment, { minLength: 1, maxLength: 4 })
  .map((parts) => `/local/domain/5/${parts.join('/')}`);
const op = fc.oneof(
  fc.record({ kind: fc.constant('write' as const), path, value: fc.string({ maxLength: 40 }) }),
  fc.record({ kind: fc.constant('mkdir' as const), path }),
  fc.record({ kind: fc.constant('rm' as const), path }),
  fc.record({
    kind: fc.constant('perms' as const),
    path,
    perms: fc.constantFrom('n5', 'n5 r0', 'b5 w7 r8'),
  }),
);
const step = fc.record({
  who: fc.constantFrom(0, 5),
  tx: fc.constantFrom('none', 'commit', 'abort', 'conflict'),
  ops: fc.array(op, { minLength: 1, maxLength: 4 }),
});

describe('consistency under random changes', () => {
  it('keeps tree, index, owner counts and memory accounting in step', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 12 }), async (steps) => {
        const xsd = await startXenstored({});
        try {
          const d0 = new TestClient(xsd.connectDomain(0));
          await d0.mkdir('/local/domain/5');
          await d0.setPerms('/local/domain/5', 'n5');
          const g = new TestClient(xsd.connectDomain(5));
          for (const s of steps) {
            const c = s.who === 0 ? d0 : g;
            const tx = s.tx === 'none' ? 0 : await c.start();
            for (const o of s.ops) {
              if (o.kind === 'write') await c.write(o.path, o.value, tx);
              else if (o.kind === 'mkdir') await c.mkdir(o.path, tx);
              else if (o.kind === 'rm') await c.rm(o.path, tx);
              else await c.setPerms(o.path, ...o.perms.split(' '));
            }
            if (s.tx === 'conflict') await d0.write('/local/domain/5/a', 'outside');
            if (tx !== 0) await c.end(tx, s.tx !== 'abort');
          }
          expect(xsd.daemon.check()).toEqual([]);
          await g.rm('/local/domain/5/a');
          await g.rm('/local/domain/5/b');
          await g.rm('/local/domain/5/c');
          await g.rm('/local/domain/5/long-name-of-a-node');
          await d0.settle();
          // Only the home (55 bytes: path, header, one perm) is left charged to domain 5.
          expect(xsd.daemon.memoryOf(5)).toBe('/local/domain/5'.length + 24 + 8);
          expect(xsd.daemon.check()).toEqual([]);
          d0.close();
          g.close();
        } finally {
          await xsd.close();
        }
      }),
      { numRuns: 60 },
    );
  });
});
