// A peer process of the conformance suite and the evtchn benchmark: another domain (the
// simulated host) or another process of dom0 (real Xen), driven over stdin/stdout with one JSON
// request per line, `{"id", "op", "args"}`, answered by `{"id", "ok": true, "value"}` or
// `{"id", "ok": false, "error": {"code", "message"}}`. Its backend comes from the environment:
// XENCONS_EVTCHN_PEER_BACKEND=linux|sim (sim: XENCONS_SIM, XENCONS_SIM_DOMID, XENCONS_SIM_TOKEN).
import { createInterface } from 'node:readline';
import { requireNative } from '@xencons/native';
import type { EventChannels } from '../event-channels.js';
import { openLinuxEventChannels } from '../linux-event-channels.js';
import { openSimEventChannels, type SimHypervisorLike } from '../sim-event-channels.js';
import { type AdversaryMode, runAdversaryProducer } from './adversary.js';
import { runGuestExchange } from './exchange.js';
import { runTimedSender } from './latency.js';

interface SimHost extends SimHypervisorLike {
  shareGrant(
    grantee: number,
    count: number,
    options?: { readonly?: boolean },
  ): Promise<{ refs: number[]; path: string; offset: number }>;
  close(): unknown;
}

let channels: EventChannels | null = null;
let host: SimHost | null = null;
let page: ArrayBuffer | null = null;
/** Deliveries per port since the last `takeEvents` of that port. */
const counts = new Map<number, number>();
const waiters: (() => void)[] = [];
/** Ports the peer does not unmask on delivery (left to explicit `unmask`). */
const manual = new Set<number>();
/** Ports the peer notifies back on every delivery (ping-pong). */
const echo = new Set<number>();

async function open(): Promise<EventChannels> {
  if (channels !== null) return channels;
  const backend = process.env.XENCONS_EVTCHN_PEER_BACKEND;
  if (backend === 'linux') {
    channels = openLinuxEventChannels();
  } else if (backend === 'sim') {
    const sim = await import('@xencons/sim-hypervisor');
    const creds = sim.simCredentialsFromEnv(process.env);
    if (creds === null) throw new Error('XENCONS_SIM is not set');
    host = (await sim.connectHypervisor(creds)) as unknown as SimHost;
    channels = await openSimEventChannels(host);
  } else {
    throw new Error(`XENCONS_EVTCHN_PEER_BACKEND must be linux or sim, not ${backend}`);
  }
  const ch = channels;
  ch.onEvent((port) => {
    counts.set(port, (counts.get(port) ?? 0) + 1);
    if (!manual.has(port) && ch.ports.has(port)) ch.unmask(port);
    if (echo.has(port) && ch.ports.has(port)) ch.notify(port);
    for (const w of waiters.splice(0)) w();
  });
  return ch;
}

/** Waits (bounded) until `port` was delivered `min` times since the last take; takes them. */
async function takeEvents(port: number, min: number, timeoutMs: number): Promise<number> {
  const end = Date.now() + timeoutMs;
  while ((counts.get(port) ?? 0) < min && Date.now() < end) {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, Math.max(1, end - Date.now()));
      waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
  const n = counts.get(port) ?? 0;
  counts.delete(port);
  return n;
}

function need<T>(value: T | null, what: string): T {
  if (value === null) throw new Error(`${what} first`);
  return value;
}

type Args = Record<string, number | string | boolean | undefined>;
const num = (a: Args, k: string): number => {
  const v = a[k];
  if (typeof v !== 'number') throw new Error(`argument ${k} must be a number`);
  return v;
};

const ops: Record<string, (a: Args) => unknown> = {
  open: async () => {
    await open();
    return { pid: process.pid };
  },
  allocUnbound: async (a) => (await open()).allocUnbound(num(a, 'remote')),
  /** Binds, then takes the event Xen raises on the new port (the port is left quiet). */
  bindInterdomain: async (a) => {
    const port = await (await open()).bindInterdomain(num(a, 'remote'), num(a, 'port'));
    if ((await takeEvents(port, 1, 10_000)) < 1) {
      throw new Error(`no event raised by binding port ${port}`);
    }
    return port;
  },
  notify: (a) => {
    const ch = need(channels, 'open');
    const count = typeof a.count === 'number' ? a.count : 1;
    for (let i = 0; i < count; i++) ch.notify(num(a, 'port'));
    return null;
  },
  unmask: (a) => need(channels, 'open').unmask(num(a, 'port')) ?? null,
  unbind: async (a) => (await need(channels, 'open').unbind(num(a, 'port'))) ?? null,
  /** With `on`, every delivery of `port` is answered with a notify on it. */
  echo: (a) => {
    if (a.on === true) echo.add(num(a, 'port'));
    else echo.delete(num(a, 'port'));
    return null;
  },
  manualUnmask: (a) => {
    if (a.on === true) manual.add(num(a, 'port'));
    else manual.delete(num(a, 'port'));
    return null;
  },
  /** Deliveries of `port` since the last take; waits (bounded) until there are at least `min`. */
  takeEvents: (a) =>
    takeEvents(
      num(a, 'port'),
      typeof a.min === 'number' ? a.min : 0,
      typeof a.timeoutMs === 'number' ? a.timeoutMs : 5000,
    ),
  /** Runs `op` expecting a typed error; answers its code (or null when it did not throw). */
  expectError: async (a) => {
    const ch = await open();
    try {
      if (a.op === 'notify') ch.notify(num(a, 'port'));
      else if (a.op === 'unmask') ch.unmask(num(a, 'port'));
      else if (a.op === 'unbind') await ch.unbind(num(a, 'port'));
      else if (a.op === 'bindInterdomain')
        await ch.bindInterdomain(num(a, 'remote'), num(a, 'port'));
      else throw new Error(`expectError: unknown op ${String(a.op)}`);
      return null;
    } catch (err) {
      return String((err as { code?: unknown }).code ?? (err as Error).message);
    }
  },
  /** Shares a fresh page with `grantee` (simulated host) and maps it; answers the grant refs. */
  sharePage: async (a) => {
    await open();
    const h = need(host, 'a simulated host');
    const s = await h.shareGrant(num(a, 'grantee'), 1, { readonly: false });
    page = requireNative().mapFile(s.path, s.offset, 4096, true);
    return { refs: s.refs };
  },
  /** Maps a page of a file (real Xen: a temp file stands in for a grant). */
  mapPage: (a) => {
    if (typeof a.path !== 'string') throw new Error('mapPage: path');
    page = requireNative().mapFile(a.path, num(a, 'offset'), 4096, true);
    return null;
  },
  exchangeGuest: async (a) =>
    runGuestExchange({
      channels: need(channels, 'open'),
      port: num(a, 'port'),
      page: need(page, 'a page'),
      messages: num(a, 'messages'),
      seed: num(a, 'seed'),
      stallMs: typeof a.stallMs === 'number' ? a.stallMs : 10_000,
    }),
  adversaryProducer: (a) =>
    runAdversaryProducer(
      need(channels, 'open'),
      num(a, 'port'),
      need(page, 'a page'),
      num(a, 'rounds'),
      a.mode as AdversaryMode,
      num(a, 'waitMs'),
    ),
  timedSender: (a) =>
    runTimedSender(need(channels, 'open'), num(a, 'port'), need(page, 'a page'), {
      samples: num(a, 'samples'),
      gapMinUs: num(a, 'gapMinUs'),
      gapMaxUs: num(a, 'gapMaxUs'),
      waitMs: num(a, 'waitMs'),
    }),
  /** Notifies `port` as fast as it can for `ms`; answers the notify calls made. */
  flood: (a) => {
    const ch = need(channels, 'open');
    const port = num(a, 'port');
    const end = performance.now() + num(a, 'ms');
    let n = 0;
    while (performance.now() < end) {
      for (let i = 0; i < 64; i++) ch.notify(port);
      n += 64;
    }
    return n;
  },
  exit: async () => {
    setImmediate(async () => {
      await channels?.close();
      host?.close();
      process.exit(0);
    });
    return null;
  },
};

const lines = createInterface({ input: process.stdin });
lines.on('line', async (line) => {
  let id: unknown = null;
  try {
    const req = JSON.parse(line) as { id: unknown; op: string; args?: Args };
    id = req.id;
    const op = ops[req.op];
    if (op === undefined) throw new Error(`unknown op ${req.op}`);
    const value = await op(req.args ?? {});
    process.stdout.write(`${JSON.stringify({ id, ok: true, value: value ?? null })}\n`);
  } catch (err) {
    const e = err as { code?: unknown; message?: unknown };
    process.stdout.write(
      `${JSON.stringify({ id, ok: false, error: { code: String(e.code ?? 'ERR_PEER'), message: String(e.message ?? err) } })}\n`,
    );
  }
});
// The parent going away ends the peer (no orphan keeps a handle).
lines.on('close', () => process.exit(0));
