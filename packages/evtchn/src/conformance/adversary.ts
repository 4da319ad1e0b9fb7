import { setImmediate as nextTurn } from 'node:timers/promises';
import type { EventChannels } from '../event-channels.js';

// Adversarial timing: the notification lands exactly between the consumer's check of the shared
// state and its sleep. A consumer round r: check that DATA is still r-1, publish CHECKED = r, then
// leave a gap during which the producer (another process) writes DATA = r, notifies and publishes
// NOTIFIED = r; only then does the consumer sleep on the event. If the backend lost that
// notification the sleep would never end, so every sleep is bounded and a timeout is reported as
// a lost wake-up. Gaps:
//   spin   the consumer spins synchronously through the gap: the event cannot even be read
//          until it sleeps (a kernel-level "notify before wait");
//   yield  the consumer lets its event loop run through the gap: the event is delivered while
//          nobody waits and must be kept for the coming wait;
//   masked the port is still masked from the previous round (round 1: from a priming
//          notification) when the notification comes, and the consumer's event loop runs through
//          the gap (so the simulated host's raw event is taken while masked, as the kernel takes
//          it on Linux); the consumer unmasks after the gap and then sleeps: the event held back
//          by the mask must be delivered then.

/** Word indices in the control page. */
const CHECKED = 0;
const DATA = 1;
const NOTIFIED = 2;
const ABORT = 3;
const PRIMED = 4;
/** Bytes of the control page used. */
export const ADVERSARY_PAGE_BYTES = 20;

export type AdversaryMode = 'spin' | 'yield' | 'masked';
export const ADVERSARY_MODES: readonly AdversaryMode[] = ['spin', 'yield', 'masked'];

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Spins (with 20 µs naps after a while, so a busy 2-core machine keeps moving) until `cond`. */
export function spinUntil(cond: () => boolean, ms: number, what: string): void {
  const end = Date.now() + ms;
  let spins = 0;
  while (!cond()) {
    if (++spins > 200) Atomics.wait(sleeper, 0, 0, 0.02);
    if ((spins & 63) === 0 && Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
  }
}

function words(page: ArrayBuffer): Uint32Array {
  return new Uint32Array(page, 0, ADVERSARY_PAGE_BYTES / 4);
}

/** Clears the control words (call before both sides start). */
export function resetAdversaryPage(page: ArrayBuffer): void {
  words(page).fill(0);
}

/** The producer side, synchronous: `rounds` notifications, each inside the consumer's gap. */
export function runAdversaryProducer(
  channels: EventChannels,
  port: number,
  page: ArrayBuffer,
  rounds: number,
  mode: AdversaryMode,
  waitMs: number,
): number {
  const w = words(page);
  if (mode === 'masked') {
    // The consumer takes this one without unmasking: round 1 starts masked too.
    Atomics.store(w, PRIMED, 1);
    channels.notify(port);
  }
  let r = 1;
  for (; r <= rounds; r++) {
    const round = r;
    spinUntil(
      () => Atomics.load(w, CHECKED) === round || Atomics.load(w, ABORT) !== 0,
      waitMs,
      `producer round ${round}: the consumer's check`,
    );
    if (Atomics.load(w, ABORT) !== 0) break;
    Atomics.store(w, DATA, round);
    channels.notify(port);
    Atomics.store(w, NOTIFIED, round);
  }
  return r - 1;
}

async function nextWithin(
  it: AsyncIterator<number>,
  ms: number,
): Promise<IteratorResult<number> | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      it.next(),
      new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The consumer side: `rounds` check / gap / sleep rounds on `port`. Throws on a lost wake-up. */
export async function runAdversaryConsumer(
  channels: EventChannels,
  port: number,
  page: ArrayBuffer,
  rounds: number,
  mode: AdversaryMode,
  waitMs: number,
): Promise<void> {
  const w = words(page);
  const it = channels.events();
  channels.unmask(port);
  try {
    if (mode === 'masked') {
      const primed = await nextWithin(it, waitMs);
      if (primed === null || primed.done || Atomics.load(w, PRIMED) !== 1) {
        throw new Error('masked: no priming event');
      }
    }
    for (let r = 1; r <= rounds; r++) {
      // The check.
      const seen = Atomics.load(w, DATA);
      if (seen !== r - 1) throw new Error(`round ${r} (${mode}): DATA is ${seen} before the gap`);
      Atomics.store(w, CHECKED, r);
      // The gap: the producer notifies now.
      const notified = () => Atomics.load(w, NOTIFIED) === r;
      if (mode !== 'spin') {
        const end = Date.now() + waitMs;
        while (!notified()) {
          if (Date.now() > end) throw new Error(`round ${r} (${mode}): producer did not notify`);
          await nextTurn();
        }
        // A few more turns, so the event is read and queued while nobody waits.
        for (let i = 0; i < 3; i++) await nextTurn();
      } else {
        spinUntil(notified, waitMs, `round ${r} (${mode}): the producer's notify`);
      }
      if (mode === 'masked') channels.unmask(port);
      // The sleep.
      const next = await nextWithin(it, waitMs);
      if (next === null) {
        throw new Error(`round ${r} (${mode}): lost wake-up, no event within ${waitMs} ms`);
      }
      if (next.done) throw new Error(`round ${r} (${mode}): the event stream ended`);
      if (next.value !== port) throw new Error(`round ${r}: event for port ${next.value}`);
      if (mode !== 'masked') channels.unmask(port);
      const data = Atomics.load(w, DATA);
      if (data !== r) throw new Error(`round ${r} (${mode}): woke with DATA ${data}`);
    }
  } catch (err) {
    Atomics.store(w, ABORT, 1);
    throw err;
  } finally {
    await it.return?.();
  }
}
