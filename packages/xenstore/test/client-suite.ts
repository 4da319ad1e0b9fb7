/**
 * The client suite, run against every real server we can start (see servers.ts). Behaviour that
 * differs between servers is checked against the reference (xen-protocols.md §1) for each.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { isXenconsError } from '@xencons/errors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  acl,
  openXenstore,
  socketTransport,
  type XenstoreClient,
  XsError,
  type XsWatch,
  type XsWatchEvent,
} from '../src/index.js';
import type { TestServer } from './servers.js';

const run = promisify(execFile);

async function nextEvent(watch: XsWatch, ms = 3000): Promise<XsWatchEvent> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no watch event on ${watch.path} within ${ms} ms`)),
      ms,
    );
  });
  try {
    const r = await Promise.race([watch.next(), timeout]);
    if (r.done) throw new Error('watch ended');
    return r.value;
  } finally {
    clearTimeout(timer);
  }
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

export function clientSuite(start: () => Promise<TestServer>): void {
  let server: TestServer;
  let xs: XenstoreClient;
  let n = 0;
  /** A fresh absolute path per test. */
  const fresh = () => `/xencons-test/t${process.pid}-${++n}`;

  beforeAll(async () => {
    server = await start();
    xs = await openXenstore({ socketPath: server.socketPath });
  });
  afterAll(async () => {
    await xs?.close();
    await server?.stop();
  });

  describe('nodes', () => {
    it('writes and reads strings and binary values (NUL and 0xff inside)', async () => {
      const p = fresh();
      await xs.write(`${p}/s`, 'héllo');
      expect(await xs.readString(`${p}/s`)).toBe('héllo');
      const bin = Uint8Array.of(0, 1, 0, 255, 0);
      await xs.write(`${p}/b`, bin);
      expect([...(await xs.read(`${p}/b`))]).toEqual([...bin]);
      await xs.write(`${p}/e`, '');
      expect((await xs.read(`${p}/e`)).length).toBe(0);
    });

    it('write creates missing parents with empty values', async () => {
      const p = fresh();
      await xs.write(`${p}/a/b/c`, 'x');
      expect(await xs.readString(`${p}/a/b`)).toBe('');
      expect(await xs.directory(`${p}/a`)).toEqual(['b']);
    });

    it('missing nodes: ENOENT as a typed error, undefined from readOptional, false from exists', async () => {
      const p = fresh();
      const err = await rejection(xs.read(`${p}/nope`));
      expect(err).toBeInstanceOf(XsError);
      expect(isXenconsError(err, 'ENOENT')).toBe(true);
      expect((err as XsError).errno).toBe(2);
      expect(await xs.readOptional(`${p}/nope`)).toBeUndefined();
      expect(await xs.readStringOptional(`${p}/nope`)).toBeUndefined();
      expect(await xs.exists(`${p}/nope`)).toBe(false);
      await xs.write(`${p}/yes`, '1');
      expect(await xs.exists(`${p}/yes`)).toBe(true);
    });

    it('mkdir makes an empty node; repeating it is OK', async () => {
      const p = fresh();
      await xs.mkdir(`${p}/d/e`);
      await xs.mkdir(`${p}/d/e`);
      expect(await xs.readString(`${p}/d/e`)).toBe('');
      expect(await xs.directory(`${p}/d`)).toEqual(['e']);
    });

    it('rm is recursive; absent node under an existing parent is OK; absent parent is ENOENT', async () => {
      const p = fresh();
      await xs.write(`${p}/x/y/z`, '1');
      await xs.rm(`${p}/x`);
      expect(await xs.exists(`${p}/x/y/z`)).toBe(false);
      expect(await xs.exists(`${p}/x`)).toBe(false);
      await xs.rm(`${p}/x`); // parent p exists
      expect(isXenconsError(await rejection(xs.rm(`${p}/no/such`)), 'ENOENT')).toBe(true);
    });

    it('directory: children in order of creation, [] without children', async () => {
      const p = fresh();
      for (const c of ['one', 'two', 'three']) await xs.write(`${p}/${c}`, c);
      expect((await xs.directory(p)).sort()).toEqual(['one', 'three', 'two']);
      expect(await xs.directory(`${p}/one`)).toEqual([]);
    });

    it('directory over 4096 bytes falls back to DIRECTORY_PART', async () => {
      const p = fresh();
      const names = Array.from(
        { length: 400 },
        (_, i) => `child-with-a-long-name-${String(i).padStart(4, '0')}`,
      );
      await Promise.all(names.map((c) => xs.write(`${p}/${c}`, '')));
      const listed = await xs.directory(p);
      expect(listed.length).toBe(names.length);
      expect([...listed].sort()).toEqual([...names].sort());
    });

    it('relative paths resolve against /local/domain/0 for a socket connection', async () => {
      const rel = `xencons-rel-${process.pid}`;
      await xs.write(`${rel}/v`, 'r');
      expect(await xs.readString(`/local/domain/0/${rel}/v`)).toBe('r');
      await xs.rm(rel);
    });

    it('invalid paths and over-size values are refused before sending', async () => {
      for (const bad of ['', '/a//b', '/a/', '/sp ace']) {
        expect(isXenconsError(await rejection(xs.read(bad)), 'EINVAL')).toBe(true);
      }
      const big = new Uint8Array(4096);
      expect(isXenconsError(await rejection(xs.write('/xencons-test/big', big)), 'E2BIG')).toBe(
        true,
      );
      // The connection is still fine.
      expect(await xs.readOptional('/xencons-test/big')).toBeUndefined();
    });

    it('the largest value that fits (4096 - path - 1) round-trips', async () => {
      const p = `${fresh()}/v`;
      const value = new Uint8Array(4096 - p.length - 1).fill(0x61);
      await xs.write(p, value);
      expect((await xs.read(p)).length).toBe(value.length);
    });
  });

  describe('permissions', () => {
    it('new dom0 nodes are n0; a typed ACL round-trips', async () => {
      const p = fresh();
      await xs.write(p, 'v');
      expect(await xs.getPerms(p)).toEqual({ owner: 0, others: 'none', entries: [] });
      const want = acl(0, 'read', { 5: 'both', 7: 'write' });
      await xs.setPerms(p, want);
      expect(await xs.getPerms(p)).toEqual(want);
      await xs.setPerms(p, ['b3', 'r0']);
      expect(await xs.getPerms(p)).toEqual({
        owner: 3,
        others: 'both',
        entries: [{ domid: 0, access: 'read' }],
      });
    });

    it('xenstore-ls -p (libxenstore) sees what setPerms wrote', async () => {
      const p = fresh();
      await xs.write(`${p}/node`, 'v');
      await xs.setPerms(`${p}/node`, acl(0, 'none', { 5: 'read' }));
      const { stdout } = await run('xenstore-ls', ['-p', p], {
        env: { ...process.env, XENSTORED_PATH: server.socketPath },
      });
      expect(stdout).toMatch(/node = "v".*\(n0,r5\)/);
    });
  });

  describe('interoperability with libxenstore (xenstore-utils)', () => {
    const env = () => ({ ...process.env, XENSTORED_PATH: server.socketPath });

    it('xenstore-read reads what the client wrote, the client reads what xenstore-write wrote', async () => {
      const p = fresh();
      await xs.write(`${p}/a`, 'from-ts');
      expect((await run('xenstore-read', [`${p}/a`], { env: env() })).stdout).toBe('from-ts\n');
      await run('xenstore-write', [`${p}/b`, 'from-c'], { env: env() });
      expect(await xs.readString(`${p}/b`)).toBe('from-c');
      await run('xenstore-rm', [`${p}/b`], { env: env() });
      expect(await xs.exists(`${p}/b`)).toBe(false);
      const { stdout } = await run('xenstore-list', [p], { env: env() });
      expect(stdout).toBe('a\n');
    });
  });

  describe('domains', () => {
    it('getDomainPath does not check existence', async () => {
      expect(await xs.getDomainPath(0)).toBe('/local/domain/0');
      expect(await xs.getDomainPath(999)).toBe('/local/domain/999');
    });

    it('introduce / isDomainIntroduced / setTarget / resume / release, with @introduceDomain and @releaseDomain', async () => {
      const domid = 40 + (process.pid % 100);
      const intro = await xs.watch('@introduceDomain');
      const rel = await xs.watch('@releaseDomain');
      expect((await nextEvent(intro)).path).toBe('@introduceDomain'); // initial
      expect((await nextEvent(rel)).path).toBe('@releaseDomain');
      expect(await xs.isDomainIntroduced(domid)).toBe(false);
      await xs.introduce(domid, 0x1234, 7);
      expect((await nextEvent(intro)).path).toBe('@introduceDomain');
      expect(await xs.isDomainIntroduced(domid)).toBe(true);
      await xs.setTarget(domid, 0);
      await xs.resume(domid);
      await xs.release(domid);
      expect((await nextEvent(rel)).path).toBe('@releaseDomain');
      expect(await xs.isDomainIntroduced(domid)).toBe(false);
      await intro.close();
      await rel.close();
    });
  });

  describe('watches', () => {
    it('delivers the initial event, then changes below the path, in order', async () => {
      const p = fresh();
      await xs.mkdir(p);
      const w = await xs.watch(p);
      expect(await nextEvent(w)).toEqual({ path: p, token: w.token });
      const writes = Array.from({ length: 50 }, (_, i) => xs.write(`${p}/k${i}`, String(i)));
      await Promise.all(writes);
      const seen: string[] = [];
      for (let i = 0; i < 50; i++) seen.push((await nextEvent(w)).path);
      expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => `${p}/k${i}`));
      await w.close();
    });

    it('initial: false skips the registration event; tokens are unique', async () => {
      const p = fresh();
      await xs.mkdir(p);
      const a = await xs.watch(p, { initial: false });
      const b = await xs.watch(p);
      expect(a.token).not.toBe(b.token);
      expect((await nextEvent(b)).path).toBe(p);
      await xs.write(`${p}/c`, '1');
      expect((await nextEvent(a)).path).toBe(`${p}/c`);
      expect((await nextEvent(b)).path).toBe(`${p}/c`);
      await a.close();
      await b.close();
    });

    it('events that arrive before iteration starts are kept (none lost between registration and delivery)', async () => {
      const p = fresh();
      await xs.mkdir(p);
      const w = await xs.watch(p);
      await xs.write(`${p}/1`, 'a');
      await xs.write(`${p}/2`, 'b');
      await new Promise((r) => setTimeout(r, 50));
      expect(w.queued).toBe(3);
      const got: string[] = [];
      for await (const ev of w) {
        got.push(ev.path);
        if (got.length === 3) break; // return() sends UNWATCH
      }
      expect(got).toEqual([p, `${p}/1`, `${p}/2`]);
      expect(w.ended).toBe(true);
    });

    it('callback form; unwatch stops delivery', async () => {
      const p = fresh();
      await xs.mkdir(p);
      const seen: string[] = [];
      const w = await xs.watch(p, { onEvent: (e) => seen.push(e.path) });
      await xs.write(`${p}/a`, '1');
      await w.close();
      await xs.write(`${p}/b`, '1');
      await xs.readString(`${p}/b`); // a round trip after the write
      expect(seen).toEqual([p, `${p}/a`]);
    });

    it('watch depth (Xen 4.22+) is refused by a 4.17 daemon with EINVAL and leaves no watch', async () => {
      const before = xs.watches.length;
      const err = await rejection(xs.watch('/', { depth: 1 }));
      if (server.kind === 'cxenstored') expect(isXenconsError(err, 'EINVAL')).toBe(true);
      else expect(err).toBeInstanceOf(Error);
      expect(xs.watches.length).toBe(before);
    });

    it('duplicate (path, token) is refused by the server; a failed WATCH leaves no watch behind', async () => {
      const before = xs.watches.length;
      const err = await rejection(xs.watch('/bad path'));
      expect(isXenconsError(err, 'EINVAL')).toBe(true);
      expect(xs.watches.length).toBe(before);
    });

    it('resetWatches drops every watch of the connection', async () => {
      const p = fresh();
      await xs.mkdir(p);
      const c2 = await openXenstore({ socketPath: server.socketPath });
      try {
        const w = await c2.watch(p);
        await nextEvent(w);
        await c2.resetWatches();
        expect(w.ended).toBe(true);
        expect(c2.watches.length).toBe(0);
        await xs.write(`${p}/after`, '1');
        expect(await c2.readString(`${p}/after`)).toBe('1');
      } finally {
        await c2.close();
      }
    });
  });

  describe('transactions', () => {
    it('raw start/commit: isolation until commit', async () => {
      const p = fresh();
      await xs.write(p, 'old');
      const tx = await xs.startTransaction();
      expect(tx.id).toBeGreaterThan(0);
      await tx.write(p, 'new');
      expect(await tx.readString(p)).toBe('new');
      expect(await xs.readString(p)).toBe('old');
      await tx.commit();
      expect(await xs.readString(p)).toBe('new');
      expect(isXenconsError(await rejection(tx.read(p)), 'ERR_XS_TX_FINISHED')).toBe(true);
    });

    it('raw abort discards; a conflicting commit fails with EAGAIN', async () => {
      const p = fresh();
      await xs.write(p, '1');
      const t1 = await xs.startTransaction();
      await t1.write(p, '2');
      await t1.abort();
      expect(await xs.readString(p)).toBe('1');
      const t2 = await xs.startTransaction();
      await t2.readString(p);
      await xs.write(p, 'outside');
      await t2.write(p, 'inside');
      expect(isXenconsError(await rejection(t2.commit()), 'EAGAIN')).toBe(true);
      expect(await xs.readString(p)).toBe('outside');
    });

    it('transaction() retries on EAGAIN: concurrent increments all count', async () => {
      const p = fresh();
      await xs.write(p, '0');
      const clients = await Promise.all(
        [1, 2, 3].map(() => openXenstore({ socketPath: server.socketPath })),
      );
      try {
        let runs = 0;
        const incr = (c: XenstoreClient) =>
          c.transaction(
            async (tx) => {
              runs++;
              const v = Number(await tx.readString(p));
              await new Promise((r) => setTimeout(r, 2));
              await tx.write(p, String(v + 1));
            },
            { retries: 100 },
          );
        await Promise.all(clients.flatMap((c) => [incr(c), incr(c), incr(c)]));
        expect(await xs.readString(p)).toBe('9');
        expect(runs).toBeGreaterThan(9); // there were conflicts, and retries fixed them
      } finally {
        await Promise.all(clients.map((c) => c.close()));
      }
    });

    it('transaction() aborts and rethrows when the function throws', async () => {
      const p = fresh();
      await xs.write(p, 'keep');
      await expect(
        xs.transaction(async (tx) => {
          await tx.write(p, 'lost');
          throw new Error('nope');
        }),
      ).rejects.toThrow('nope');
      expect(await xs.readString(p)).toBe('keep');
    });

    it('transaction() gives up after the retry budget with EAGAIN', async () => {
      const p = fresh();
      await xs.write(p, '0');
      let runs = 0;
      const err = await rejection(
        xs.transaction(
          async (tx) => {
            runs++;
            await tx.readString(p);
            await xs.write(p, String(runs)); // conflict every time
            await tx.write(p, 'tx');
          },
          { retries: 3, initialDelay: 1 },
        ),
      );
      expect(isXenconsError(err, 'EAGAIN')).toBe(true);
      expect(runs).toBe(4);
    });
  });

  describe('pipelining and limits', () => {
    it('1000 requests in flight resolve with their own replies', async () => {
      const p = fresh();
      await Promise.all(Array.from({ length: 200 }, (_, i) => xs.write(`${p}/${i}`, `v${i}`)));
      const reads = await Promise.all(
        Array.from({ length: 1000 }, (_, i) => xs.readString(`${p}/${i % 200}`)),
      );
      expect(reads.every((v, i) => v === `v${i % 200}`)).toBe(true);
    });

    it('clients of one process share a read buffer: values they keep stay intact', async () => {
      const p = fresh();
      const other = await openXenstore({ socketPath: server.socketPath });
      try {
        const big = (c: string) => c.repeat(4000);
        await xs.write(`${p}/x`, big('x'));
        await other.write(`${p}/y`, big('y'));
        // Replies of both connections (several reads each, frames split across them) land in
        // the same buffer in turns; every value read must still be its own.
        const kept = await Promise.all(
          Array.from({ length: 40 }, (_, i) =>
            i % 2 === 0 ? xs.read(`${p}/x`) : other.read(`${p}/y`),
          ),
        );
        kept.forEach((v, i) => {
          expect(Buffer.from(v).toString('latin1')).toBe(big(i % 2 === 0 ? 'x' : 'y'));
        });
      } finally {
        await other.close();
      }
    });

    it('cork/uncork batches requests and still answers each', async () => {
      const p = fresh();
      xs.cork();
      const ops = [
        xs.write(`${p}/a`, '1'),
        xs.write(`${p}/b`, '2'),
        xs.readStringOptional(`${p}/a`),
      ];
      xs.uncork();
      const [, , a] = await Promise.all(ops);
      expect(a).toBe('1');
    });

    it('the pending limit rejects at once, without sending', async () => {
      const c = await openXenstore({ socketPath: server.socketPath, maxPending: 4 });
      try {
        const results = await Promise.allSettled(
          Array.from({ length: 10 }, () => c.readOptional('/')),
        );
        const limited = results.filter(
          (r) => r.status === 'rejected' && isXenconsError(r.reason, 'ERR_XS_PENDING_LIMIT'),
        );
        expect(limited.length).toBe(6);
        expect(results.filter((r) => r.status === 'fulfilled').length).toBe(4);
      } finally {
        await c.close();
      }
    });

    it('an aborted signal rejects before sending; close() rejects later requests', async () => {
      const c = await openXenstore({ socketPath: server.socketPath });
      const ac = new AbortController();
      ac.abort(new Error('stop'));
      expect(
        isXenconsError(await rejection(c.read('/', { signal: ac.signal })), 'ERR_XS_ABORTED'),
      ).toBe(true);
      await c.close();
      expect(isXenconsError(await rejection(c.read('/')), 'ERR_XS_CLOSED')).toBe(true);
    });
  });

  describe('daemon operations', () => {
    it('CONTROL help answers with text; a 4.17 server says ENOSYS to GET_FEATURE/GET_QUOTA', async () => {
      const help = await xs.control('help');
      expect(help).toMatch(/print|check|quota/);
      for (const op of [() => xs.getFeature(), () => xs.getQuota()]) {
        const err = await rejection(op());
        if (server.kind === 'cxenstored') expect(isXenconsError(err, 'ENOSYS')).toBe(true);
        else expect(err === undefined || err instanceof Error).toBe(true);
      }
    });
  });

  describe('reconnection', () => {
    it('reconnects after the daemon restarts and registers its watches again', async () => {
      const c = await openXenstore({
        socketPath: server.socketPath,
        reconnect: { initialDelay: 10, maxDelay: 50 },
      });
      try {
        const p = '/xencons-reconnect';
        await c.mkdir(p);
        const w = await c.watch(p);
        expect((await nextEvent(w)).path).toBe(p);
        await server.restart(); // an empty store: p is gone
        // The client notices at EOF, a moment later (at once for an in-process daemon's restart).
        for (let i = 0; i < 200 && c.state === 'open' && c.connections === 1; i++) {
          await new Promise((r) => setTimeout(r, 5));
        }
        expect(c.state !== 'open' || c.connections === 2).toBe(true);
        // Requests made while reconnecting wait for the new connection.
        await c.write(`${p}/after`, 'yes');
        // The watch is registered again: its initial event comes first, then the change.
        const events: string[] = [];
        while (!events.includes(`${p}/after`)) events.push((await nextEvent(w)).path);
        expect(events[0]).toBe(p);
        expect(await c.readString(`${p}/after`)).toBe('yes');
        await w.close();
      } finally {
        await c.close();
        // `xs` lost its connection too; it reconnects by itself.
        await xs.readOptional('/');
      }
    });
  });

  it('socketTransport honours XENSTORED_PATH through openXenstore() defaults', async () => {
    const saved = process.env.XENSTORED_PATH;
    process.env.XENSTORED_PATH = server.socketPath;
    try {
      const c = await openXenstore({ transport: socketTransport() });
      expect(c.description).toBe(`unix:${server.socketPath}`);
      expect(await c.getDomainPath(3)).toBe('/local/domain/3');
      await c.close();
    } finally {
      if (saved === undefined) delete process.env.XENSTORED_PATH;
      else process.env.XENSTORED_PATH = saved;
    }
  });
}
