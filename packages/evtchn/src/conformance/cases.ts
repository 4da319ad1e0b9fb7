import { strict as assert } from 'node:assert';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EventChannels } from '../event-channels.js';
import { EvtchnCode } from '../evtchn-errors.js';
import {
  ADVERSARY_MODES,
  type AdversaryMode,
  resetAdversaryPage,
  runAdversaryConsumer,
} from './adversary.js';
import { type ExchangeReport, runDom0Exchange } from './exchange.js';
import type { PeerProcess } from './peer-client.js';
import type { ConformanceTarget, ForeignHandle, SharedPage } from './target.js';

// The conformance suite of EventChannels: the same cases on every backend (the simulated host
// here, real Xen in dom0 through `pnpm test:xen`). Plain node:assert, no test framework, so the
// real-Xen check can run it from the built package.

/** What a case gets: the target, plus cleanups that run after it whatever happens. */
export interface CaseContext {
  readonly target: ConformanceTarget;
  /** Opens a handle in our domain, closed after the case. */
  open(): Promise<EventChannels>;
  /** Opens a handle in another domain, released after the case. */
  openForeign(): Promise<ForeignHandle>;
  /** A peer process, stopped after the case. */
  spawnPeer(): Promise<PeerProcess>;
  sharePage(peer: PeerProcess): Promise<SharedPage>;
  /** Runs `fn` after the case (last registered first). */
  defer(fn: () => unknown): void;
}

export interface ConformanceCase {
  readonly name: string;
  /** Needs peer processes (the built `dist/conformance/peer.js`). */
  readonly crossProcess: boolean;
  run(ctx: CaseContext): Promise<void>;
}

/** Counts deliveries per port on a handle; unmasks on delivery unless told not to. */
class Recorder {
  readonly #counts = new Map<number, number>();
  readonly #wake = new Set<() => void>();
  readonly #off: () => void;

  constructor(
    readonly channels: EventChannels,
    autoUnmask = true,
  ) {
    this.#off = channels.onEvent((port) => {
      this.#counts.set(port, this.count(port) + 1);
      if (autoUnmask) channels.unmask(port);
      for (const w of this.#wake) w();
    });
  }

  count(port: number): number {
    return this.#counts.get(port) ?? 0;
  }

  /** Waits until `port` was delivered at least `n` times in all. */
  async waitFor(port: number, n: number, ms: number, what: string): Promise<void> {
    const end = Date.now() + ms;
    while (this.count(port) < n) {
      const left = end - Date.now();
      if (left <= 0) {
        throw new Error(
          `${what}: port ${port} delivered ${this.count(port)} times, expected ${n} within ${ms} ms`,
        );
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.#wake.delete(done);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.#wake.add(done);
      });
    }
  }

  stop(): void {
    this.#off();
  }
}

async function expectCode(p: Promise<unknown> | (() => unknown), code: string, what: string) {
  try {
    if (typeof p === 'function') p();
    else await p;
  } catch (err) {
    assert.equal((err as { code?: unknown }).code, code, `${what}: ${(err as Error).message}`);
    return;
  }
  assert.fail(`${what}: expected ${code}, nothing was thrown`);
}

/**
 * `channels.bindInterdomain`, then the event Xen raises on every newly bound port (notifications
 * sent to the port while it was unbound are lost, so the binder is told to look): taken and
 * unmasked, so the caller starts from a quiet, unmasked port.
 */
async function bindQuiet(
  channels: EventChannels,
  remoteDomid: number,
  remotePort: number,
  waitMs: number,
): Promise<number> {
  const it = channels.events();
  try {
    const port = await channels.bindInterdomain(remoteDomid, remotePort);
    // Other ports of the handle may fire meanwhile (binds running in parallel): skip them here.
    const end = Date.now() + waitMs;
    while (
      (await nextWithin(it, end - Date.now(), `the event raised by binding ${port}`)) !== port
    );
    channels.unmask(port);
    return port;
  } finally {
    await it.return?.();
  }
}

/** A connected pair: `a` (ours) allocates, `b` binds; both ports quiet and unmasked. */
async function connect(
  a: EventChannels,
  aDomid: number,
  b: EventChannels,
  bDomid: number,
  waitMs: number,
) {
  const pa = await a.allocUnbound(bDomid);
  const pb = await bindQuiet(b, aDomid, pa, waitMs);
  return { pa, pb };
}

async function nextWithin(it: AsyncIterator<number>, ms: number, what: string): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const r = await Promise.race([
      it.next(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no event within ${ms} ms`)), ms);
      }),
    ]);
    if (r.done) throw new Error(`${what}: the iteration ended`);
    return r.value;
  } finally {
    clearTimeout(timer);
  }
}

/** A round trip on a connected pair in both directions (proves it still works). */
async function roundTrip(
  ra: Recorder,
  pa: number,
  rb: Recorder,
  pb: number,
  ms: number,
  what: string,
): Promise<void> {
  const na = ra.count(pa);
  rb.channels.notify(pb);
  await ra.waitFor(pa, na + 1, ms, `${what}: b → a`);
  const nb = rb.count(pb);
  ra.channels.notify(pa);
  await rb.waitFor(pb, nb + 1, ms, `${what}: a → b`);
}

const inProcess = (name: string, run: (ctx: CaseContext) => Promise<void>): ConformanceCase => ({
  name,
  crossProcess: false,
  run,
});
const crossProcess = (name: string, run: (ctx: CaseContext) => Promise<void>): ConformanceCase => ({
  name,
  crossProcess: true,
  run,
});

export const conformanceCases: readonly ConformanceCase[] = [
  inProcess('alloc-bind-notify', async (ctx) => {
    const { waitMs } = ctx.target.scale;
    const a = await ctx.open();
    const { domid: bDomid, channels: b } = await ctx.openForeign();
    const { pa, pb } = await connect(a, ctx.target.domid, b, bDomid, waitMs);
    assert.ok(a.ports.has(pa) && b.ports.has(pb), 'both ends are listed in ports');
    assert.equal(a.backend, ctx.target.name);
    // b → a, received through the iterator.
    const it = a.events();
    b.notify(pb);
    assert.equal(await nextWithin(it, waitMs, 'b → a'), pa);
    a.unmask(pa);
    // a → b, received through a callback.
    const rb = new Recorder(b);
    a.notify(pa);
    await rb.waitFor(pb, 1, waitMs, 'a → b');
    // Again, now that both were unmasked.
    b.notify(pb);
    assert.equal(await nextWithin(it, waitMs, 'b → a again'), pa);
    await it.return?.();
  }),

  inProcess('bind-raises-event', async (ctx) => {
    const { waitMs, settleMs } = ctx.target.scale;
    const a = await ctx.open();
    const { domid: bDomid, channels: b } = await ctx.openForeign();
    const pa = await a.allocUnbound(bDomid);
    // Notifications to a port nobody bound yet go nowhere...
    a.notify(pa);
    const ra = new Recorder(a);
    const rb = new Recorder(b);
    const pb = await b.bindInterdomain(ctx.target.domid, pa);
    // ...so Xen raises the newly bound port once, and only that port.
    await rb.waitFor(pb, 1, waitMs, 'the event raised by the bind');
    await sleep(settleMs);
    assert.equal(rb.count(pb), 1, 'one event for the bind');
    assert.equal(ra.count(pa), 0, 'the allocating side gets no event from the bind');
    ra.stop();
    rb.stop();
  }),

  inProcess('callback-and-iterator', async (ctx) => {
    const { waitMs } = ctx.target.scale;
    const a = await ctx.open();
    const { domid: bDomid, channels: b } = await ctx.openForeign();
    const { pa, pb } = await connect(a, ctx.target.domid, b, bDomid, waitMs);
    const abort = new AbortController();
    const it1 = a.events();
    const it2 = a[Symbol.asyncIterator]();
    const it3 = a.events({ signal: abort.signal });
    const seen: number[] = [];
    const off = a.onEvent((p) => seen.push(p));
    b.notify(pb);
    assert.equal(await nextWithin(it1, waitMs, 'iterator 1'), pa);
    assert.equal(await nextWithin(it2, waitMs, 'iterator 2'), pa);
    assert.equal(await nextWithin(it3, waitMs, 'iterator 3'), pa);
    assert.deepEqual(seen, [pa], 'the listener got the delivery once');
    // An aborted iterator ends; a removed listener hears nothing more.
    abort.abort();
    assert.deepEqual(await it3.next(), { value: undefined, done: true });
    off();
    a.unmask(pa);
    b.notify(pb);
    assert.equal(await nextWithin(it1, waitMs, 'iterator 1, second delivery'), pa);
    assert.deepEqual(seen, [pa], 'a removed listener is not called');
    assert.equal(await nextWithin(it2, waitMs, 'iterator 2, second delivery'), pa);
    // Closing the handle ends the iterators, also one that is waiting.
    const waiting = it1.next();
    await a.close();
    assert.deepEqual(await waiting, { value: undefined, done: true });
    assert.deepEqual(await it2.next(), { value: undefined, done: true });
    assert.deepEqual(await a.events().next(), { value: undefined, done: true });
  }),

  inProcess('mask-until-unmask', async (ctx) => {
    const { waitMs, settleMs } = ctx.target.scale;
    const a = await ctx.open();
    const { domid: bDomid, channels: b } = await ctx.openForeign();
    const { pa, pb } = await connect(a, ctx.target.domid, b, bDomid, waitMs);
    // A marker channel: once its event is in, anything sent before it on the other port is too.
    const { pa: qa, pb: qb } = await connect(a, ctx.target.domid, b, bDomid, waitMs);
    const ra = new Recorder(a, false);
    const marker = async (n: number, what: string) => {
      a.unmask(qa);
      b.notify(qb);
      await ra.waitFor(qa, n, waitMs, what);
      await sleep(settleMs);
    };
    b.notify(pb);
    await ra.waitFor(pa, 1, waitMs, 'first event');
    // Masked now: five more notifications are held back...
    for (let i = 0; i < 5; i++) b.notify(pb);
    await marker(1, 'marker 1');
    assert.equal(ra.count(pa), 1, 'no delivery while masked');
    // ...and come as one delivery after unmask.
    a.unmask(pa);
    await ra.waitFor(pa, 2, waitMs, 'the coalesced event after unmask');
    await marker(2, 'marker 2');
    assert.equal(ra.count(pa), 2, 'notifications while masked coalesce into one delivery');
    // Unmasking a port that did not fire delivers nothing; it is then enabled again.
    a.unmask(pa);
    a.unmask(pa);
    await marker(3, 'marker 3');
    assert.equal(ra.count(pa), 2, 'unmask without a pending event delivers nothing');
    b.notify(pb);
    await ra.waitFor(pa, 3, waitMs, 'event after unmask');
    ra.stop();
  }),

  inProcess('unbind', async (ctx) => {
    const { waitMs, settleMs } = ctx.target.scale;
    const a = await ctx.open();
    const { domid: bDomid, channels: b } = await ctx.openForeign();
    const { pa, pb } = await connect(a, ctx.target.domid, b, bDomid, waitMs);
    const { pa: qa, pb: qb } = await connect(a, ctx.target.domid, b, bDomid, waitMs);
    const ra = new Recorder(a);
    await a.unbind(pa);
    assert.ok(!a.ports.has(pa), 'an unbound port leaves ports');
    await expectCode(() => a.notify(pa), EvtchnCode.NOT_BOUND, 'notify after unbind');
    await expectCode(a.unbind(pa), EvtchnCode.NOT_BOUND, 'unbind twice');
    // The peer's end is unbound now: its notifications go nowhere, without an error.
    b.notify(pb);
    b.notify(qb);
    await ra.waitFor(qa, 1, waitMs, 'the other channel');
    await sleep(settleMs);
    assert.equal(ra.count(pa), 0, 'nothing delivered for an unbound port');
    // Its end was left unbound for our domain (EVTCHNOP_close): we can connect to it again.
    const pa2 = await a.bindInterdomain(bDomid, pb);
    await ra.waitFor(pa2, 1, waitMs, 'the event raised by the bind');
    b.notify(pb);
    await ra.waitFor(pa2, 2, waitMs, 'the re-bound channel');
    ra.stop();
  }),

  inProcess('close', async (ctx) => {
    const { waitMs } = ctx.target.scale;
    const a = await ctx.open();
    const { domid: bDomid, channels: b } = await ctx.openForeign();
    const { pa, pb } = await connect(a, ctx.target.domid, b, bDomid, waitMs);
    await a.close();
    assert.ok(a.closed);
    assert.equal(a.ports.size, 0);
    await expectCode(() => a.notify(pa), EvtchnCode.CLOSED, 'notify after close');
    await expectCode(() => a.unmask(pa), EvtchnCode.CLOSED, 'unmask after close');
    await expectCode(a.allocUnbound(bDomid), EvtchnCode.CLOSED, 'allocUnbound after close');
    await a.close(); // idempotent
    // Closing unbound our end: the peer's notify is dropped silently and its port is free for
    // our domain to bind again.
    b.notify(pb);
    const a2 = await ctx.open();
    const pa2 = await bindQuiet(a2, bDomid, pb, waitMs);
    const it = a2.events();
    b.notify(pb);
    assert.equal(await nextWithin(it, waitMs, 'after re-binding'), pa2);
    await it.return?.();
  }),

  inProcess('misuse-not-bound', async (ctx) => {
    const { waitMs, settleMs } = ctx.target.scale;
    const a = await ctx.open();
    const c = await ctx.open(); // a bystander handle of our own domain
    const { domid: bDomid, channels: b } = await ctx.openForeign();
    const { pa, pb } = await connect(a, ctx.target.domid, b, bDomid, waitMs);
    const { pa: pc, pb: pbc } = await connect(c, ctx.target.domid, b, bDomid, waitMs);
    const rc = new Recorder(c);
    const rb = new Recorder(b);
    // c's port and a port nobody allocated are not a's to use.
    const never = 4000;
    for (const port of [pc, never]) {
      if (a.ports.has(port)) continue;
      await expectCode(() => a.notify(port), EvtchnCode.NOT_BOUND, `notify(${port})`);
      await expectCode(() => a.unmask(port), EvtchnCode.NOT_BOUND, `unmask(${port})`);
      await expectCode(a.unbind(port), EvtchnCode.NOT_BOUND, `unbind(${port})`);
    }
    // A foreign port number (b's domain), unless it happens to equal one of ours.
    if (!a.ports.has(pb))
      await expectCode(() => a.notify(pb), EvtchnCode.NOT_BOUND, 'foreign port');
    // Not a port at all.
    await expectCode(() => a.notify(-1), 'ERR_INVALID_ARG', 'notify(-1)');
    await expectCode(() => a.notify(1.5), 'ERR_INVALID_ARG', 'notify(1.5)');
    await expectCode(a.allocUnbound(-3), 'ERR_INVALID_ARG', 'allocUnbound(-3)');
    // Nobody was harmed: c got nothing, and both channels work both ways.
    await sleep(settleMs);
    assert.equal(rc.count(pc), 0, "misuse delivered nothing to c's port");
    assert.equal(rb.count(pbc), 0, "misuse delivered nothing to b's port");
    await roundTrip(rc, pc, rb, pbc, waitMs, 'c ↔ b after misuse');
    const ra = new Recorder(a);
    await roundTrip(ra, pa, rb, pb, waitMs, 'a ↔ b after misuse');
    rc.stop();
    rb.stop();
    ra.stop();
  }),

  inProcess('misuse-bind', async (ctx) => {
    const { waitMs } = ctx.target.scale;
    const t = ctx.target;
    const a = await ctx.open();
    const { domid: bDomid, channels: b } = await ctx.openForeign();
    const { pa, pb } = await connect(a, t.domid, b, bDomid, waitMs);
    // A port that is already connected.
    await expectCode(b.bindInterdomain(t.domid, pa), EvtchnCode.BAD_PORT, 'bind a connected port');
    // A port offered to another domain.
    const offered = await a.allocUnbound(await t.bystanderDomid());
    await expectCode(
      b.bindInterdomain(t.domid, offered),
      EvtchnCode.BAD_PORT,
      'bind a port offered to someone else',
    );
    // A port that does not exist, and a domain that does not exist.
    await expectCode(b.bindInterdomain(t.domid, 60_000), EvtchnCode.BAD_PORT, 'bind port 60000');
    await expectCode(
      b.bindInterdomain(t.missingDomid, 1),
      EvtchnCode.NO_DOMAIN,
      `bind to domain ${t.missingDomid}`,
    );
    await expectCode(
      b.bindInterdomain(0x7ff0, 1),
      'ERR_INVALID_ARG',
      'bind to DOMID_FIRST_RESERVED',
    );
    // The existing channel is unharmed.
    await roundTrip(new Recorder(a), pa, new Recorder(b), pb, waitMs, 'a ↔ b after misuse');
    // The offered port is still ours and unbound: unbinding it works.
    await a.unbind(offered);
  }),

  crossProcess('misuse-cross-process', async (ctx) => {
    const { waitMs } = ctx.target.scale;
    const t = ctx.target;
    const a = await ctx.open();
    const peer = await ctx.spawnPeer();
    const pa = await a.allocUnbound(peer.domid);
    const pp = await peer.call<number>('bindInterdomain', { remote: t.domid, port: pa });
    const qa = await a.allocUnbound(peer.domid);
    const qp = await peer.call<number>('bindInterdomain', { remote: t.domid, port: qa });
    const peerPorts = new Set([pp, qp]);
    // Our port numbers, used by the peer: not its ports (unless the numbers collide).
    for (const port of [pa, qa, 4000]) {
      if (peerPorts.has(port)) continue;
      for (const op of ['notify', 'unmask', 'unbind']) {
        const code = await peer.call('expectError', { op, port });
        assert.equal(code, EvtchnCode.NOT_BOUND, `peer ${op}(${port})`);
      }
    }
    assert.equal(
      await peer.call('expectError', { op: 'bindInterdomain', remote: t.domid, port: pa }),
      EvtchnCode.BAD_PORT,
      'the peer binding our connected port',
    );
    // Both channels still work both ways.
    const ra = new Recorder(a);
    for (const [ours, theirs] of [
      [pa, pp],
      [qa, qp],
    ] as const) {
      await peer.call('notify', { port: theirs });
      await ra.waitFor(ours, 1, waitMs, `peer → us on ${ours}`);
      a.notify(ours);
      assert.ok(
        (await peer.call<number>('takeEvents', { port: theirs, min: 1, timeoutMs: waitMs })) >= 1,
        `us → peer on ${theirs}`,
      );
    }
    ra.stop();
  }),

  ...ADVERSARY_MODES.map((mode) =>
    crossProcess(`lost-wakeup-${mode}`, (ctx) => adversarial(ctx, mode)),
  ),

  crossProcess('ring-exchange', async (ctx) => {
    const t = ctx.target;
    const messages = t.scale.exchangeMessagesPerGuest;
    const a = await ctx.open();
    const guests = await Promise.all([ctx.spawnPeer(), ctx.spawnPeer()]);
    const setups = await Promise.all(
      guests.map(async (peer, i) => {
        const page = await ctx.sharePage(peer);
        const gp = await peer.call<number>('allocUnbound', { remote: t.domid });
        const port = await bindQuiet(a, peer.domid, gp, t.scale.waitMs);
        return { peer, page, gp, port, seed: 0x1000 + i };
      }),
    );
    const stallMs = Math.max(10_000, t.scale.waitMs);
    const guestRuns = setups.map((s) =>
      s.peer.call<ExchangeReport>('exchangeGuest', {
        port: s.gp,
        messages,
        seed: s.seed,
        stallMs,
      }),
    );
    // A failing guest must not leave dom0 waiting: it fails the whole run.
    const dom0 = runDom0Exchange(
      a,
      setups.map((s) => ({ port: s.port, page: s.page.memory, messages, seed: s.seed })),
      stallMs,
    );
    const [dom0Reports, ...guestReports] = await Promise.all([dom0, ...guestRuns]);
    for (let i = 0; i < setups.length; i++) {
      const g = guestReports[i]!;
      const d = dom0Reports[i]!;
      assert.equal(g.sent, messages, `guest ${i} sent`);
      assert.equal(d.received, messages, `dom0 received from guest ${i}`);
      assert.equal(g.received, messages, `guest ${i} received`);
      assert.equal(d.sentChecksum, g.receivedChecksum, `checksum dom0 → guest ${i}`);
      assert.equal(g.sentChecksum, d.receivedChecksum, `checksum guest ${i} → dom0`);
    }
  }),

  crossProcess('peer-killed', async (ctx) => {
    const { waitMs } = ctx.target.scale;
    const t = ctx.target;
    const a = await ctx.open();
    const [doomed, survivor] = await Promise.all([ctx.spawnPeer(), ctx.spawnPeer()]);
    const ra = new Recorder(a);
    const link = async (peer: PeerProcess) => {
      const pp = await peer.call<number>('allocUnbound', { remote: t.domid });
      return { peer, pp, pa: await bindQuiet(a, peer.domid, pp, waitMs) };
    };
    const d = await link(doomed);
    const s = await link(survivor);
    await doomed.kill();
    // Our end of the dead peer's channel stays ours; notifying it goes nowhere, without error.
    a.notify(d.pa);
    // The survivor is unaffected.
    await s.peer.call('notify', { port: s.pp });
    await ra.waitFor(s.pa, 1, waitMs, 'survivor → us');
    a.notify(s.pa);
    assert.ok(
      (await s.peer.call<number>('takeEvents', { port: s.pp, min: 1, timeoutMs: waitMs })) >= 1,
      'us → survivor',
    );
    await a.unbind(d.pa);
    ra.stop();
  }),
];

async function adversarial(ctx: CaseContext, mode: AdversaryMode): Promise<void> {
  const t = ctx.target;
  const a = await ctx.open();
  const peer = await ctx.spawnPeer();
  const page = await ctx.sharePage(peer);
  resetAdversaryPage(page.memory);
  const pp = await peer.call<number>('allocUnbound', { remote: t.domid });
  const pa = await bindQuiet(a, peer.domid, pp, t.scale.waitMs);
  const rounds = t.scale.adversaryRounds;
  const producer = peer.call<number>('adversaryProducer', {
    port: pp,
    rounds,
    mode,
    waitMs: t.scale.waitMs,
  });
  producer.catch(() => {}); // awaited below; the consumer's error is the interesting one
  await runAdversaryConsumer(a, pa, page.memory, rounds, mode, t.scale.waitMs);
  assert.equal(await producer, rounds);
}
