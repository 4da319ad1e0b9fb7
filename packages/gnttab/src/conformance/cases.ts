import * as assert from 'node:assert/strict';
import type { Gnttab } from '../gnttab.js';
import { PAGE_SIZE } from '../gnttab.js';
import { mapPrimaryConsole } from '../primary-console.js';
import type { GnttabFixture } from './fixture.js';
import type { Peer } from './peer-client.js';

/** One conformance case: runs against any backend's fixture; throws when the backend fails it. */
export interface ConformanceCase {
  readonly name: string;
  /** What it checks, in one line. */
  readonly title: string;
  /** Fixture parts it needs; without them it does not apply (reported as skipped). */
  readonly needs?: readonly ('console' | 'frameOnlyConsole')[];
  run(fx: GnttabFixture): Promise<void>;
}

/** A grant ref nobody granted: inside Xen's default table and the simulated host's, never used. */
const UNKNOWN_REF = 8000;
/** A domid no domain has (below DOMID_FIRST_RESERVED). */
const NO_DOMAIN = 0x7000;
/** A frame no domain has: past this machine's memory (Xen treats it as I/O space). */
const BAD_FRAME = 0xfffff0;
/** Bytes past `struct xencons_interface` (3088 bytes in 4.17) that no console user touches. */
const CONSOLE_SPARE = 4092;

/** Deterministic bytes (xorshift32) so each side can check the other's writes. */
export function pattern(seed: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 0x9e3779b9;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

function sameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) {
      assert.fail(`${what}: byte ${i} is ${actual[i]}, expected ${expected[i]}`);
    }
  }
}

const XENCONS_ERROR = Symbol.for('xencons.error');

/** Awaits `promise`, which must reject with `code`; returns the error. */
async function refused(
  promise: Promise<unknown>,
  code: string,
  what: string,
): Promise<{ code: string; name?: string; reason?: string; details?: { reason?: unknown } }> {
  let result: unknown;
  try {
    result = await promise;
  } catch (err) {
    const e = err as { code?: unknown; message?: unknown; name?: unknown; errorName?: unknown };
    assert.equal(
      e.code,
      code,
      `${what}: expected ${code}, got ${String(e.code)}: ${String(e.message)}`,
    );
    // A typed error: a GnttabError (a XenconsError) here, or one the peer reported by name.
    if (e.errorName !== undefined) {
      if (code.startsWith('ERR_GNTTAB_')) assert.equal(e.errorName, 'GnttabError', what);
    } else {
      assert.equal(
        (err as Record<symbol, unknown>)[XENCONS_ERROR],
        true,
        `${what}: not a XenconsError`,
      );
      if (code.startsWith('ERR_GNTTAB_')) assert.equal(e.name, 'GnttabError', what);
    }
    return err as { code: string };
  }
  // Let go of what was wrongly made before failing.
  const r = result as { unmap?: () => Promise<void>; end?: () => Promise<void> } | number;
  if (typeof r === 'object' && r !== null) await (r.unmap ?? r.end)?.call(r).catch(() => {});
  return assert.fail(`${what}: expected ${code}, but it succeeded`);
}

/** Runs `fn` with a peer of the fixture, closing it afterwards. */
async function withPeer<T>(start: () => Promise<Peer>, fn: (peer: Peer) => Promise<T>): Promise<T> {
  const peer = await start();
  try {
    return await fn(peer);
  } finally {
    await peer.close();
  }
}

async function withHandle<T>(fx: GnttabFixture, fn: (g: Gnttab) => Promise<T>): Promise<T> {
  const g = await fx.open();
  try {
    return await fn(g);
  } finally {
    await g.close();
  }
}

export const gnttabConformanceCases: readonly ConformanceCase[] = [
  {
    name: 'share-map-self',
    title:
      'pages shared with our own domain map back; writes through either view show in the other',
    async run(fx) {
      const g = fx.gnttab;
      const shared = await g.share(fx.domid, { count: 2 });
      try {
        assert.equal(shared.refs.length, 2);
        assert.equal(shared.bytes.length, 2 * PAGE_SIZE);
        assert.equal(shared.pages.length, 2);
        sameBytes(shared.bytes, new Uint8Array(2 * PAGE_SIZE), 'a fresh share is zeroed');
        shared.bytes.set(pattern(1, 2 * PAGE_SIZE));
        const m = await g.map(fx.domid, shared.refs);
        try {
          assert.equal(m.kind, 'grant');
          assert.equal(m.writable, true);
          sameBytes(m.bytes, pattern(1, 2 * PAGE_SIZE), 'mapped view');
          m.pages[1]!.set(pattern(2, 100), 50);
          sameBytes(shared.pages[1]!.subarray(50, 150), pattern(2, 100), 'write through the map');
        } finally {
          await m.unmap();
        }
        assert.equal(m.mapped, false);
        assert.equal(m.bytes.length, 0, 'an unmapped view reads nothing');
        await m.unmap(); // idempotent
        // One page of the two, alone.
        const second = await g.map(fx.domid, [shared.refs[1]!], { writable: false });
        try {
          assert.equal(second.bytes.length, PAGE_SIZE);
          sameBytes(second.bytes.subarray(50, 150), pattern(2, 100), 'second page alone');
        } finally {
          await second.unmap();
        }
      } finally {
        await shared.end();
      }
      assert.equal(shared.ended, true);
      assert.equal(shared.bytes.length, 0, 'an ended share reads nothing');
      await shared.end(); // idempotent
    },
  },
  {
    name: 'peer-shares',
    title: 'a page another process (domain) shares and writes is seen here; our writes reach it',
    async run(fx) {
      await withPeer(fx.peer, async (peer) => {
        const { handle, refs } = await peer.share(fx.domid, 2);
        await peer.write(handle, 0, pattern(3, 2 * PAGE_SIZE));
        const m = await fx.gnttab.map(peer.domid, refs);
        try {
          sameBytes(m.bytes, pattern(3, 2 * PAGE_SIZE), "the peer's pages");
          m.bytes.set(pattern(4, 300), PAGE_SIZE - 100);
          sameBytes(
            await peer.read(handle, PAGE_SIZE - 100, 300),
            pattern(4, 300),
            'our write, seen by the peer',
          );
        } finally {
          await m.unmap();
        }
        await peer.release(handle);
      });
    },
  },
  {
    name: 'peer-maps',
    title:
      'a page we share with another process (domain) is mapped there; its writes are seen here',
    async run(fx) {
      await withPeer(fx.peer, async (peer) => {
        const shared = await fx.gnttab.share(peer.domid);
        try {
          shared.bytes.set(pattern(5, PAGE_SIZE));
          const h = await peer.map(fx.domid, shared.refs);
          sameBytes(
            await peer.read(h, 0, PAGE_SIZE),
            pattern(5, PAGE_SIZE),
            'our page, seen by the peer',
          );
          await peer.write(h, 1000, pattern(6, 64));
          sameBytes(shared.bytes.subarray(1000, 1064), pattern(6, 64), "the peer's write");
          await peer.release(h);
        } finally {
          await shared.end();
        }
      });
    },
  },
  {
    name: 'read-only-grant',
    title: 'a read-only grant maps read-only; a writable map of it fails ERR_GNTTAB_READ_ONLY',
    async run(fx) {
      await withPeer(fx.peer, async (peer) => {
        const shared = await fx.gnttab.share(peer.domid, { readonly: true });
        try {
          assert.equal(shared.readonly, true);
          shared.bytes.set(pattern(7, PAGE_SIZE));
          await refused(
            peer.map(fx.domid, shared.refs, true),
            'ERR_GNTTAB_READ_ONLY',
            'peer, writable',
          );
          const h = await peer.map(fx.domid, shared.refs, false);
          sameBytes(await peer.read(h, 0, PAGE_SIZE), pattern(7, PAGE_SIZE), 'read-only view');
          shared.bytes[10] = 0xee; // the granter still writes
          assert.equal((await peer.read(h, 10, 1))[0], 0xee);
          await peer.release(h);
        } finally {
          await shared.end();
        }
        const own = await fx.gnttab.share(fx.domid, { readonly: true });
        try {
          await refused(
            fx.gnttab.map(fx.domid, own.refs),
            'ERR_GNTTAB_READ_ONLY',
            'same process, writable',
          );
          const m = await fx.gnttab.map(fx.domid, own.refs, { writable: false });
          assert.equal(m.writable, false);
          await m.unmap();
        } finally {
          await own.end();
        }
      });
    },
  },
  {
    name: 'grant-for-another-domain',
    title:
      'a grant meant for another domain fails ERR_GNTTAB_NO_ACCESS; it stays usable by no one else',
    async run(fx) {
      await withPeer(fx.peer, async (peer) => {
        const shared = await fx.gnttab.share(fx.otherDomid);
        try {
          shared.bytes.set(pattern(8, PAGE_SIZE));
          const e = await refused(peer.map(fx.domid, shared.refs), 'ERR_GNTTAB_NO_ACCESS', 'peer');
          if (fx.backend === 'sim') assert.equal(e.reason, 'other-domain');
          await refused(
            fx.gnttab.map(fx.domid, shared.refs),
            'ERR_GNTTAB_NO_ACCESS',
            'same process',
          );
          // The refusal changed nothing: our page is intact, and a proper grant still maps.
          sameBytes(shared.bytes, pattern(8, PAGE_SIZE), 'our page after the refusals');
          const ok = await fx.gnttab.share(peer.domid);
          try {
            ok.bytes[0] = 42;
            const h = await peer.map(fx.domid, ok.refs);
            assert.equal((await peer.read(h, 0, 1))[0], 42);
            await peer.release(h);
          } finally {
            await ok.end();
          }
        } finally {
          await shared.end();
        }
      });
    },
  },
  {
    name: 'unknown-grant',
    title: 'a ref never granted, or a domain that does not exist, fails ERR_GNTTAB_NO_ACCESS',
    async run(fx) {
      const e = await refused(
        fx.gnttab.map(fx.domid, [UNKNOWN_REF]),
        'ERR_GNTTAB_NO_ACCESS',
        'unknown ref',
      );
      if (fx.backend === 'sim') assert.equal(e.details?.reason, 'no-grant');
      await refused(fx.gnttab.map(NO_DOMAIN, [8]), 'ERR_GNTTAB_NO_ACCESS', 'unknown domain');
      await withPeer(fx.peer, async (peer) => {
        await refused(
          peer.map(fx.domid, [UNKNOWN_REF]),
          'ERR_GNTTAB_NO_ACCESS',
          'peer, unknown ref',
        );
      });
    },
  },
  {
    name: 'ended-grant',
    title: 'an ended grant fails ERR_GNTTAB_NO_ACCESS, whether or not it was mapped before',
    async run(fx) {
      await withPeer(fx.peer, async (peer) => {
        const never = await fx.gnttab.share(peer.domid);
        await never.end();
        await refused(
          peer.map(fx.domid, never.refs),
          'ERR_GNTTAB_NO_ACCESS',
          'ended, never mapped',
        );
        const once = await fx.gnttab.share(peer.domid);
        const h = await peer.map(fx.domid, once.refs);
        await peer.release(h);
        await once.end();
        await refused(
          peer.map(fx.domid, once.refs),
          'ERR_GNTTAB_NO_ACCESS',
          'ended after an unmap',
        );
        await refused(fx.gnttab.map(fx.domid, once.refs), 'ERR_GNTTAB_NO_ACCESS', 'same process');
      });
    },
  },
  {
    name: 'end-while-mapped',
    title: 'ending a grant the peer still maps leaves the peer its page until it unmaps',
    async run(fx) {
      await withPeer(fx.peer, async (peer) => {
        const shared = await fx.gnttab.share(peer.domid);
        shared.bytes.set(pattern(9, PAGE_SIZE));
        const h = await peer.map(fx.domid, shared.refs);
        await shared.end();
        assert.equal(shared.bytes.length, 0, 'our view is gone');
        sameBytes(await peer.read(h, 0, PAGE_SIZE), pattern(9, PAGE_SIZE), "the peer's view");
        await peer.write(h, 0, pattern(10, 16));
        sameBytes(await peer.read(h, 0, 16), pattern(10, 16), 'the peer still writes');
        await peer.release(h);
      });
    },
  },
  {
    name: 'peer-killed',
    title: 'a peer killed while mapping our page harms no one: the page and a new peer work',
    async run(fx) {
      const shared = await fx.gnttab.share(fx.peerDomid);
      try {
        shared.bytes.set(pattern(11, PAGE_SIZE));
        const victim = await fx.newPeer();
        try {
          await victim.map(fx.domid, shared.refs);
        } finally {
          await victim.kill();
        }
        sameBytes(shared.bytes, pattern(11, PAGE_SIZE), 'our page after the kill');
        await withPeer(fx.newPeer, async (peer) => {
          const h = await peer.map(fx.domid, shared.refs);
          sameBytes(await peer.read(h, 0, 32), pattern(11, 32), 'a new peer maps it');
          await peer.release(h);
        });
      } finally {
        await shared.end();
      }
    },
  },
  {
    name: 'frame-map-unprivileged',
    title: "mapping another domain's frame without privilege fails ERR_GNTTAB_NOT_PRIVILEGED",
    async run(fx) {
      const target = fx.console ?? fx.frameOnlyConsole;
      await withPeer(fx.unprivilegedPeer, async (peer) => {
        const domid = target?.domid ?? fx.domid;
        await refused(
          peer.mapFrames(domid, [target?.ringRef ?? 1]),
          'ERR_GNTTAB_NOT_PRIVILEGED',
          `frame of domain ${domid}`,
        );
      });
    },
  },
  {
    name: 'frame-unknown',
    title: 'mapping a frame the domain does not have fails ERR_GNTTAB_BAD_FRAME',
    needs: ['console'],
    async run(fx) {
      const c = fx.console!;
      await refused(fx.gnttab.mapFrames(c.domid, [BAD_FRAME]), 'ERR_GNTTAB_BAD_FRAME', 'bad frame');
    },
  },
  {
    name: 'primary-console',
    title: 'the console page maps as grant 0 and by its ring-ref frame: the same page',
    needs: ['console'],
    async run(fx) {
      const c = fx.console!;
      const byGrant = await mapPrimaryConsole(fx.gnttab, c.domid, c.ringRef);
      try {
        assert.equal(byGrant.via, 'grant');
        assert.equal(byGrant.grantError, null);
        const byFrame = await fx.gnttab.mapFrames(c.domid, [c.ringRef]);
        try {
          assert.equal(byFrame.kind, 'frame');
          const g = byGrant.mapping.bytes;
          const f = byFrame.bytes;
          const saved = g.slice(CONSOLE_SPARE, PAGE_SIZE);
          try {
            g.set([0x58, 0x51, 0x47, 0x54], CONSOLE_SPARE);
            sameBytes(
              f.subarray(CONSOLE_SPARE),
              Uint8Array.of(0x58, 0x51, 0x47, 0x54),
              'marker via the frame',
            );
            f[CONSOLE_SPARE] = 0x46;
            assert.equal(g[CONSOLE_SPARE], 0x46, 'marker via grant 0');
          } finally {
            g.set(saved, CONSOLE_SPARE);
          }
        } finally {
          await byFrame.unmap();
        }
      } finally {
        await byGrant.mapping.unmap();
      }
    },
  },
  {
    name: 'primary-console-fallback',
    title: 'without grant 0 for us, the console page is mapped by its ring-ref frame',
    needs: ['frameOnlyConsole'],
    async run(fx) {
      const c = fx.frameOnlyConsole!;
      const r = await mapPrimaryConsole(fx.gnttab, c.domid, c.ringRef);
      try {
        assert.equal(r.via, 'frame');
        assert.equal(r.grantError?.code, 'ERR_GNTTAB_NO_ACCESS');
        assert.equal(r.mapping.bytes.length, PAGE_SIZE);
      } finally {
        await r.mapping.unmap();
      }
      await withPeer(fx.unprivilegedPeer, async (peer) => {
        // An unprivileged domain gets neither: the frame's refusal is what it sees.
        await refused(
          peer.mapFrames(c.domid, [c.ringRef]),
          'ERR_GNTTAB_NOT_PRIVILEGED',
          'unprivileged',
        );
      });
    },
  },
  {
    name: 'close-releases',
    title:
      'closing a handle ends its shares and unmaps its maps; it then refuses ERR_GNTTAB_CLOSED',
    async run(fx) {
      await withHandle(fx, async (g) => {
        const shared = await g.share(fx.domid);
        shared.bytes.set(pattern(12, PAGE_SIZE));
        const other = await fx.gnttab.map(fx.domid, shared.refs);
        const own = await g.map(fx.domid, shared.refs);
        await g.close();
        assert.equal(g.closed, true);
        assert.equal(shared.ended, true);
        assert.equal(own.mapped, false);
        assert.equal(own.bytes.length, 0);
        // Another handle's mapping of it stays, as a peer's would.
        sameBytes(other.bytes, pattern(12, PAGE_SIZE), 'the other handle keeps its view');
        await other.unmap();
        await refused(g.share(fx.domid), 'ERR_GNTTAB_CLOSED', 'share after close');
        await refused(g.map(fx.domid, shared.refs), 'ERR_GNTTAB_CLOSED', 'map after close');
        await g.close(); // idempotent
      });
    },
  },
  {
    name: 'bad-arguments',
    title: 'bad domids, refs and counts fail ERR_INVALID_ARG before reaching the backend',
    async run(fx) {
      const g = fx.gnttab;
      await refused(g.share(-1), 'ERR_INVALID_ARG', 'negative grantee');
      await refused(g.share(0x7ff0), 'ERR_INVALID_ARG', 'reserved grantee');
      await refused(g.share(fx.domid, { count: 0 }), 'ERR_INVALID_ARG', 'zero pages');
      await refused(g.map(fx.domid, []), 'ERR_INVALID_ARG', 'no refs');
      await refused(g.map(fx.domid, [1.5]), 'ERR_INVALID_ARG', 'fractional ref');
      await refused(g.mapFrames(fx.domid, [-1]), 'ERR_INVALID_ARG', 'negative frame');
    },
  },
];

/** Whether `c` applies to `fx` (its fixture needs are there). */
export function applies(c: ConformanceCase, fx: GnttabFixture): boolean {
  return (c.needs ?? []).every((need) => fx[need] !== null);
}
