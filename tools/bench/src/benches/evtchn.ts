import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type EventChannels, LINUX_EVTCHN_DEVICE } from '@xencons/evtchn';
import {
  type ConformanceTarget,
  linuxConformanceTarget,
  type PeerProcess,
  receiveTimed,
  simConformanceTarget,
} from '@xencons/evtchn/conformance';
import { startHypervisor } from '@xencons/sim-hypervisor';
import type { Bench, BenchOptions, BenchResult } from '../result.js';

// Event channels between two processes, on every backend this machine has (the simulated host
// always; /dev/xen/evtchn in a Xen dom0). This process is dom0; the peer is another process (on
// the simulated host, another domain), the conformance suite's peer program.
//
//  - notify → wake-up, one way: the peer waits until we took the previous sample, spins a random
//    50-150 µs gap (so we are asleep in the event loop, and the peer is running when it
//    notifies, as machine-limits.md measures), stamps CLOCK_MONOTONIC into a shared page and
//    notifies; our event callback stamps the clock. p50 and p99 over all samples; targets
//    p50 ≤ 50 µs, p99 ≤ 500 µs.
//  - ping-pong: we notify, the peer notifies back from its event callback, we notify again from
//    ours: every notification wakes a sleeping process. Notifications per second, both ways.
//  - flood: the peer notifies as fast as it can; we unmask on each delivery. Notify calls per
//    second, and the deliveries they coalesce into (mask-until-unmask).
//
// The load average is recorded with every figure: this 2-core machine is shared.

const quantile = (sorted: Float64Array, q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const load = () => Number(loadavg()[0]!.toFixed(2));

/** Binds to the peer's port and takes the event the bind raises; the port is left unmasked. */
async function connectPeer(
  ch: EventChannels,
  peer: PeerProcess,
): Promise<{ pa: number; pp: number }> {
  const pp = await peer.call<number>('allocUnbound', { remote: 0 });
  const it = ch.events();
  const pa = await ch.bindInterdomain(peer.domid, pp);
  const first = await Promise.race([
    it.next(),
    new Promise<null>((resolve) => setTimeout(() => resolve(null), 5000)),
  ]);
  await it.return?.();
  if (first === null) throw new Error('evtchn bench: no event after binding');
  ch.unmask(pa);
  return { pa, pp };
}

async function* latency(
  backend: string,
  target: ConformanceTarget,
  ch: EventChannels,
  peer: PeerProcess,
  options: BenchOptions,
): AsyncIterable<BenchResult> {
  const page = await target.sharePage(peer);
  try {
    const { pa, pp } = await connectPeer(ch, peer);
    const run = async (samples: number) => {
      const received = receiveTimed(ch, pa, page.memory, samples, 10_000);
      const sent = peer.call<number>('timedSender', {
        port: pp,
        samples,
        gapMinUs: 50,
        gapMaxUs: 150,
        waitMs: 10_000,
      });
      const [ns] = await Promise.all([received, sent]);
      return ns;
    };
    await run(options.quick ? 200 : 2000); // warm-up
    const loadBefore = load();
    const samples = options.quick ? 2000 : 20_000;
    const ns = (await run(samples)).sort();
    const us = (x: number) => Number((x / 1000).toFixed(1));
    const common = {
      backend,
      samples,
      p50: us(quantile(ns, 0.5)),
      p99: us(quantile(ns, 0.99)),
      p999: us(quantile(ns, 0.999)),
      max: us(ns[ns.length - 1]!),
      load: Math.max(loadBefore, load()),
    };
    yield {
      bench: 'evtchn',
      case: `${backend}/notify→wake-up`,
      metric: 'p50',
      value: common.p50,
      unit: 'µs',
      target: '≤ 50',
      ...common,
    };
    yield {
      bench: 'evtchn',
      case: `${backend}/notify→wake-up`,
      metric: 'p99',
      value: common.p99,
      unit: 'µs',
      target: '≤ 500',
      ...common,
    };
    await ch.unbind(pa);
  } finally {
    await page.release();
  }
}

async function* pingPong(
  backend: string,
  ch: EventChannels,
  peer: PeerProcess,
  options: BenchOptions,
): AsyncIterable<BenchResult> {
  const { pa, pp } = await connectPeer(ch, peer);
  await peer.call('echo', { port: pp, on: true });
  const run = (ms: number) =>
    new Promise<number>((resolve, reject) => {
      let trips = 0;
      let last = 0;
      const end = performance.now() + ms;
      const stall = setInterval(() => {
        if (trips === last) {
          off();
          clearInterval(stall);
          reject(new Error(`ping-pong stalled after ${trips} round trips`));
        }
        last = trips;
      }, 2000);
      const off = ch.onEvent((port) => {
        if (port !== pa) return;
        ch.unmask(pa);
        trips++;
        if (performance.now() < end) {
          ch.notify(pa);
        } else {
          off();
          clearInterval(stall);
          resolve(trips);
        }
      });
      ch.notify(pa);
    });
  await run(options.quick ? 100 : 300);
  const loadBefore = load();
  const seconds = options.quick ? 0.5 : 2;
  const start = performance.now();
  const trips = await run(seconds * 1000);
  const elapsed = (performance.now() - start) / 1000;
  await peer.call('echo', { port: pp, on: false });
  yield {
    bench: 'evtchn',
    case: `${backend}/ping-pong`,
    metric: 'notifications/s',
    value: Math.round((2 * trips) / elapsed),
    unit: '/s',
    backend,
    roundTripUs: Number(((elapsed * 1e6) / trips).toFixed(1)),
    load: Math.max(loadBefore, load()),
  };
  // Let the last echo land before the port goes.
  await new Promise((r) => setTimeout(r, 20));
  await ch.unbind(pa);
}

async function* flood(
  backend: string,
  ch: EventChannels,
  peer: PeerProcess,
  options: BenchOptions,
): AsyncIterable<BenchResult> {
  const { pa, pp } = await connectPeer(ch, peer);
  let deliveries = 0;
  const off = ch.onEvent((port) => {
    if (port !== pa) return;
    deliveries++;
    ch.unmask(pa);
  });
  const ms = options.quick ? 300 : 1000;
  const loadBefore = load();
  const calls = await peer.call<number>('flood', { port: pp, ms });
  await new Promise((r) => setTimeout(r, 50)); // the last delivery
  off();
  yield {
    bench: 'evtchn',
    case: `${backend}/flood`,
    metric: 'notify calls/s',
    value: Math.round(calls / (ms / 1000)),
    unit: '/s',
    backend,
    deliveriesPerSecond: Math.round(deliveries / (ms / 1000)),
    load: Math.max(loadBefore, load()),
  };
  await ch.unbind(pa);
}

interface World {
  readonly name: string;
  readonly target: ConformanceTarget;
  stop(): Promise<void>;
}

async function simWorld(scratch: string): Promise<World> {
  const dir = join(scratch, 'host');
  const hv = await startHypervisor({ dir });
  const target = await simConformanceTarget({ dir });
  return {
    name: 'sim',
    target,
    async stop() {
      await target.close();
      await hv.close();
    },
  };
}

async function* runEvtchn(options: BenchOptions): AsyncIterable<BenchResult> {
  const scratch = mkdtempSync(join(tmpdir(), 'xencons-bench-evtchn-'));
  const worlds: (() => Promise<World>)[] = [() => simWorld(scratch)];
  if (existsSync(LINUX_EVTCHN_DEVICE)) {
    worlds.push(async () => {
      const target = linuxConformanceTarget();
      return { name: 'linux', target, stop: () => target.close() };
    });
  } else {
    process.stderr.write(
      `evtchn: ${LINUX_EVTCHN_DEVICE} missing (not a Xen dom0): linux skipped\n`,
    );
  }
  try {
    for (const make of worlds) {
      const world = await make();
      let ch: EventChannels | undefined;
      let peer: PeerProcess | undefined;
      try {
        ch = await world.target.open();
        peer = await world.target.spawnPeer();
        yield* latency(world.name, world.target, ch, peer, options);
        yield* pingPong(world.name, ch, peer, options);
        yield* flood(world.name, ch, peer, options);
      } finally {
        await peer?.close();
        await ch?.close();
        await world.stop();
      }
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

export const evtchnBench: Bench = {
  name: 'evtchn',
  description: 'event channels between two processes: notify→wake-up p50/p99, notifications/s',
  run: runEvtchn,
};
