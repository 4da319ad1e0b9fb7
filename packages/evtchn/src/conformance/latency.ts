import type { EventChannels } from '../event-channels.js';
import { spinUntil } from './adversary.js';

// One-way notify-to-wake-up latency between two processes (the evtchn benchmark). The sender
// waits until the receiver has taken the previous sample, spins a random gap (so the receiver
// is asleep in its event loop, and the sender is running when it notifies, as in
// machine-limits.md), stamps CLOCK_MONOTONIC into the shared page and notifies. The receiver
// stamps the clock in its event callback; the difference is one sample.

/** Bytes of the shared page used: seq (u32), ack (u32), t0 (u64 ns). */
export const LATENCY_PAGE_BYTES = 16;

interface Words {
  readonly u32: Uint32Array;
  readonly u64: BigUint64Array;
}

function view(page: ArrayBuffer): Words {
  return { u32: new Uint32Array(page, 0, 2), u64: new BigUint64Array(page, 8, 1) };
}

export interface TimedSenderOptions {
  readonly samples: number;
  readonly gapMinUs: number;
  readonly gapMaxUs: number;
  /** Bound on each wait for the receiver. */
  readonly waitMs: number;
}

/** The sender (synchronous): `samples` stamped notifications. Returns the samples sent. */
export function runTimedSender(
  channels: EventChannels,
  port: number,
  page: ArrayBuffer,
  o: TimedSenderOptions,
): number {
  const { u32, u64 } = view(page);
  let x = 0x9e3779b9;
  for (let seq = 1; seq <= o.samples; seq++) {
    spinUntil(() => Atomics.load(u32, 1) === seq - 1, o.waitMs, `sample ${seq}: receiver ack`);
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const gapNs = BigInt(
      Math.round((o.gapMinUs + ((x >>> 0) % (o.gapMaxUs - o.gapMinUs + 1))) * 1000),
    );
    const until = process.hrtime.bigint() + gapNs;
    while (process.hrtime.bigint() < until) {
      // the gap: running, not sleeping
    }
    u64[0] = process.hrtime.bigint();
    Atomics.store(u32, 0, seq);
    channels.notify(port);
  }
  return o.samples;
}

/**
 * The receiver: records one sample (ns) per delivery of `port` until `samples` were taken.
 * Resolves with the samples; rejects when a sample does not arrive within `waitMs`.
 */
export function receiveTimed(
  channels: EventChannels,
  port: number,
  page: ArrayBuffer,
  samples: number,
  waitMs: number,
): Promise<Float64Array> {
  const { u32, u64 } = view(page);
  u32.fill(0);
  const out = new Float64Array(samples);
  let taken = 0;
  return new Promise((resolve, reject) => {
    let last = taken;
    const watchdog = setInterval(() => {
      if (taken === last) {
        finish(new Error(`no sample for ${waitMs} ms after ${taken} of ${samples}`));
      }
      last = taken;
    }, waitMs);
    const off = channels.onEvent((p) => {
      if (p !== port) return;
      const now = process.hrtime.bigint();
      channels.unmask(port);
      const seq = Atomics.load(u32, 0);
      if (seq !== taken + 1) return; // a late duplicate; nothing new
      out[taken++] = Number(now - u64[0]!);
      Atomics.store(u32, 1, seq);
      if (taken === samples) finish();
    });
    const finish = (err?: Error) => {
      clearInterval(watchdog);
      off();
      if (err) reject(err);
      else resolve(out);
    };
    channels.unmask(port);
  });
}
