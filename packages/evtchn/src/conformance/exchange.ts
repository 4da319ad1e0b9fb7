import { type PageMemory, RingConsumer, RingProducer, XENCONS_INTERFACE } from '@xencons/ring';
import type { EventChannels } from '../event-channels.js';

// The message exchange of the conformance suite: guests and dom0 talk through a console page
// (`struct xencons_interface`) with event notifications, the way a PV console does. A guest
// sends `messages` 8-byte messages on `out` (u32 sequence number, u32 value derived from its
// seed); dom0 checks each one and echoes it back on `in` with the value inverted; the guest checks
// every echo. Both sides keep FNV-1a checksums of what they sent and received, compared at the
// end. Everything is driven by events: a side that cannot progress waits for a notification,
// and nothing polls. A stall of `stallMs` without progress is reported as a lost wake-up.

const MSG = 8;
const ECHO = 0xa5a5a5a5;

/** The value of message `seq` of the guest seeded with `seed`. */
export function messageValue(seed: number, seq: number): number {
  let x = (Math.imul(seq ^ seed, 0x9e3779b1) + seed) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x85ebca6b) >>> 0;
  x ^= x >>> 13;
  return x >>> 0;
}

/** FNV-1a over the 4 bytes of `word` (little-endian), continuing from `h`. */
export function fnvWord(h: number, word: number): number {
  h = Math.imul(h ^ (word & 0xff), 0x01000193);
  h = Math.imul(h ^ ((word >>> 8) & 0xff), 0x01000193);
  h = Math.imul(h ^ ((word >>> 16) & 0xff), 0x01000193);
  h = Math.imul(h ^ (word >>> 24), 0x01000193);
  return h >>> 0;
}

export const FNV_START = 0x811c9dc5;

/** What one side saw of one guest's exchange. */
export interface ExchangeReport {
  sent: number;
  sentChecksum: number;
  received: number;
  receivedChecksum: number;
  /** Deliveries handled. */
  wakeups: number;
  /** Deliveries after which there was nothing to do (allowed: events are hints). */
  idleWakeups: number;
}

function newReport(): ExchangeReport {
  return {
    sent: 0,
    sentChecksum: FNV_START,
    received: 0,
    receivedChecksum: FNV_START,
    wakeups: 0,
    idleWakeups: 0,
  };
}

/** Runs until `done()`, pumping on every event of its ports; rejects on a stall or an error. */
function drive(
  channels: EventChannels,
  pumps: ReadonlyMap<number, () => boolean>,
  done: () => boolean,
  stallMs: number,
  describe: () => string,
  onWakeup: (port: number, progressed: boolean) => void,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let progressTick = 0;
    let seenTick = -1;
    let finished = false;
    const finish = (err?: Error) => {
      if (finished) return;
      finished = true;
      clearInterval(watchdog);
      off();
      if (err === undefined) resolve();
      else reject(err);
    };
    const run = (pump: () => boolean): boolean => {
      let progressed = false;
      try {
        progressed = pump();
      } catch (err) {
        finish(err as Error);
        return false;
      }
      if (progressed) progressTick++;
      if (done()) finish();
      return progressed;
    };
    const off = channels.onEvent((port) => {
      const pump = pumps.get(port);
      if (pump === undefined || finished) return;
      // Unmask first, then look at the ring: an event after this point is delivered again.
      channels.unmask(port);
      onWakeup(port, run(pump));
    });
    const watchdog = setInterval(() => {
      if (progressTick === seenTick) {
        finish(new Error(`no progress for ${stallMs} ms (a lost wake-up?): ${describe()}`));
      }
      seenTick = progressTick;
    }, stallMs);
    // Start: each side pumps once on its own (the peer may have started earlier). Unmask first:
    // a delivery made before we listened left the port masked.
    for (const [port, pump] of pumps) {
      if (finished) break;
      channels.unmask(port);
      run(pump);
    }
  });
}

export interface GuestExchangeOptions {
  readonly channels: EventChannels;
  /** The guest's port, connected to dom0. */
  readonly port: number;
  readonly page: PageMemory;
  readonly messages: number;
  readonly seed: number;
  readonly stallMs?: number;
}

/** The guest side: produces `out`, consumes dom0's echoes from `in`. */
export async function runGuestExchange(o: GuestExchangeOptions): Promise<ExchangeReport> {
  const out = new RingProducer(o.page, XENCONS_INTERFACE.out);
  const input = new RingConsumer(o.page, XENCONS_INTERFACE.in);
  const outBuf = new Uint8Array(XENCONS_INTERFACE.out.size);
  const outWords = new Uint32Array(outBuf.buffer);
  const inBuf = new Uint8Array(XENCONS_INTERFACE.in.size);
  const inWords = new Uint32Array(inBuf.buffer);
  const r = newReport();
  const { messages, seed, channels, port } = o;

  const pump = (): boolean => {
    let progressed = false;
    // Echoes first: that frees dom0 to read more of `out`.
    const got = input.read(inBuf, 0, input.available() & ~(MSG - 1));
    for (let w = 0; w < got >>> 2; w += 2) {
      const seq = inWords[w]!;
      const value = inWords[w + 1]!;
      if (seq !== r.received || value !== (messageValue(seed, seq) ^ ECHO) >>> 0) {
        throw new Error(
          `guest ${seed}: echo ${r.received} is (${seq}, ${value}), expected (${r.received}, ${(messageValue(seed, r.received) ^ ECHO) >>> 0})`,
        );
      }
      r.receivedChecksum = fnvWord(fnvWord(r.receivedChecksum, seq), value);
      r.received++;
    }
    if (got > 0) progressed = true;
    const room = Math.min(out.free() >>> 3, messages - r.sent);
    if (room > 0) {
      for (let i = 0; i < room; i++) {
        const seq = r.sent + i;
        const value = messageValue(seed, seq);
        outWords[2 * i] = seq;
        outWords[2 * i + 1] = value;
        r.sentChecksum = fnvWord(fnvWord(r.sentChecksum, seq), value);
      }
      const wrote = out.write(outBuf, 0, room * MSG);
      if (wrote !== room * MSG) throw new Error(`guest ${seed}: wrote ${wrote} of ${room * MSG}`);
      r.sent += room;
      progressed = true;
    }
    if (progressed) channels.notify(port);
    return progressed;
  };

  await drive(
    channels,
    new Map([[port, pump]]),
    () => r.received === messages,
    o.stallMs ?? 10_000,
    () =>
      `guest ${seed}: sent ${r.sent}, received ${r.received} of ${messages}; out ${out.available()} queued, in ${input.available()} queued`,
    (_p, progressed) => {
      r.wakeups++;
      if (!progressed) r.idleWakeups++;
    },
  );
  return r;
}

export interface Dom0Guest {
  /** dom0's port connected to this guest. */
  readonly port: number;
  readonly page: PageMemory;
  readonly messages: number;
  readonly seed: number;
}

/** The dom0 side for any number of guests on one handle: consumes `out`, echoes on `in`. */
export async function runDom0Exchange(
  channels: EventChannels,
  guests: readonly Dom0Guest[],
  stallMs = 10_000,
): Promise<ExchangeReport[]> {
  const reports = guests.map(newReport);
  const buf = new Uint8Array(XENCONS_INTERFACE.in.size);
  const words = new Uint32Array(buf.buffer);
  const states = guests.map((g, i) => ({
    g,
    r: reports[i]!,
    out: new RingConsumer(g.page, XENCONS_INTERFACE.out),
    input: new RingProducer(g.page, XENCONS_INTERFACE.in),
  }));
  const pumps = new Map<number, () => boolean>();
  for (const s of states) {
    const { g, r, out, input } = s;
    pumps.set(g.port, () => {
      const n = Math.min(out.available(), input.free()) & ~(MSG - 1);
      if (n === 0) return false;
      const got = out.read(buf, 0, n);
      if (got !== n) throw new Error(`dom0: read ${got} of ${n} from guest ${g.seed}`);
      for (let w = 0; w < n >>> 2; w += 2) {
        const seq = words[w]!;
        const value = words[w + 1]!;
        if (seq !== r.received || value !== messageValue(g.seed, seq)) {
          throw new Error(
            `dom0: message ${r.received} of guest ${g.seed} is (${seq}, ${value}), expected (${r.received}, ${messageValue(g.seed, r.received)})`,
          );
        }
        r.receivedChecksum = fnvWord(fnvWord(r.receivedChecksum, seq), value);
        r.received++;
        const echo = (value ^ ECHO) >>> 0;
        words[w + 1] = echo;
        r.sentChecksum = fnvWord(fnvWord(r.sentChecksum, seq), echo);
      }
      const wrote = input.write(buf, 0, n);
      if (wrote !== n) throw new Error(`dom0: echoed ${wrote} of ${n} to guest ${g.seed}`);
      r.sent += n / MSG;
      channels.notify(g.port);
      return true;
    });
  }
  await drive(
    channels,
    pumps,
    () => states.every((s) => s.r.sent === s.g.messages),
    stallMs,
    () =>
      states
        .map(
          (s) =>
            `guest ${s.g.seed}: dom0 received ${s.r.received} of ${s.g.messages}, out ${s.out.available()} queued, in ${s.input.available()} queued`,
        )
        .join('; '),
    (port, progressed) => {
      const s = states.find((x) => x.g.port === port)!;
      s.r.wakeups++;
      if (!progressed) s.r.idleWakeups++;
    },
  );
  return reports;
}
