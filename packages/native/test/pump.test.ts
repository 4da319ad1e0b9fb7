import { spawnSync } from 'node:child_process';
import { closeSync, constants, mkdirSync, openSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isXenconsError } from '@xencons/errors';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { PUMP_BROKEN_RX, PUMP_READABLE } from '../index.js';
import { binding, native, tempDir, waitFor } from './support.js';

// One ring pump in this process, as dom0 of a simulated host laid out by hand (the files and
// FIFOs of @xencons/sim-hypervisor, as tools/bench/c/console-ref.c lays them out): the test plays
// the guest on the same page through a second mapping.

const EVENT_FILE_SIZE = 36864;
const PENDING = 512 / 4;
const ROUTE = 1024 / 4;
const ATTACH = ROUTE + 4096;
// struct xencons_interface: in[1024] at 0, out[2048] at 1024, indices at 3072..3087.
const IN = { data: 0, size: 1024, cons: 3072, prod: 3076 };
const OUT = { data: 1024, size: 2048, cons: 3080, prod: 3084 };
// dom0 reads `out` and writes `in`.
const LAYOUTS = [OUT.data, OUT.size, OUT.prod, OUT.cons, IN.data, IN.size, IN.prod, IN.cons];
const DOM0 = { domid: 0, port: 3, handle: 1 };
const GUEST = { domid: 1, port: 1, handle: 2 };

function eventFile(path: string, domid: number, port: number, remote: typeof DOM0, handle: number) {
  const words = new Uint32Array(EVENT_FILE_SIZE / 4);
  words[0] = 0x58455654;
  words[1] = 1;
  words[2] = domid;
  words[ROUTE + port] = ((remote.domid + 1) << 16) | remote.port;
  words[ATTACH + port] = handle;
  writeFileSync(path, words);
}

native.describe('ring pump (native thread over a simulated console page)', () => {
  const b = () => binding();
  let dir: ReturnType<typeof tempDir>;
  let page: ArrayBuffer;
  let guestPage: ArrayBuffer;
  let guestEvents: ArrayBuffer;
  let dom0Events: ArrayBuffer;
  let guestBell: number;
  let events: number[];
  let id = 0;

  beforeEach(() => {
    dir = tempDir('xencons-pump-');
    mkdirSync(join(dir.path, 'evtchn'));
    eventFile(join(dir.path, 'evtchn/d0.events'), 0, DOM0.port, GUEST, DOM0.handle);
    eventFile(join(dir.path, 'evtchn/d1.events'), 1, GUEST.port, DOM0, GUEST.handle);
    const fifos = [1, 2].map((h) => join(dir.path, `evtchn/h${h}.fifo`));
    expect(spawnSync('mkfifo', fifos).status).toBe(0);
    guestBell = openSync(fifos[1]!, constants.O_RDWR | constants.O_NONBLOCK);
    writeFileSync(join(dir.path, 'page'), new Uint8Array(4096));
    page = b().mapFile(join(dir.path, 'page'), 0, 4096, true);
    guestPage = b().mapFile(join(dir.path, 'page'), 0, 4096, true);
    guestEvents = b().mapFile(join(dir.path, 'evtchn/d1.events'), 0, EVENT_FILE_SIZE, true);
    dom0Events = b().mapFile(join(dir.path, 'evtchn/d0.events'), 0, EVENT_FILE_SIZE, true);
    events = [];
  });
  afterEach(() => {
    if (id) b().pumpClose(id);
    id = 0;
    closeSync(guestBell);
    for (const m of [page, guestPage, guestEvents, dom0Events]) b().unmap(m);
    dir.remove();
  });

  const start = (spinNs = 20_000) =>
    b().pumpStart(
      new Uint8Array(page),
      LAYOUTS,
      [1, DOM0.domid, DOM0.handle, DOM0.port],
      dir.path,
      [4096, 4096, spinNs],
      (bits) => events.push(bits),
    );

  /** The guest produces into `out` and notifies dom0 as SimEventHandle.notify does. */
  function guestWrite(bytes: Uint8Array): number {
    const w = new Uint32Array(guestPage);
    const u8 = new Uint8Array(guestPage);
    const prod = w[OUT.prod / 4]!;
    const free = OUT.size - ((prod - Atomics.load(w, OUT.cons / 4)) >>> 0);
    const n = Math.max(0, Math.min(free, bytes.length));
    for (let i = 0; i < n; i++) u8[OUT.data + ((prod + i) & (OUT.size - 1))] = bytes[i]!;
    if (n > 0) Atomics.store(w, OUT.prod / 4, (prod + n) >>> 0);
    notifyDom0();
    return n;
  }

  /** As SimEventHandle.notify: dom0's pending bit, then a byte on its handle's doorbell. */
  function notifyDom0(): void {
    Atomics.or(new Int32Array(dom0Events), PENDING + (DOM0.port >>> 5), 1 << DOM0.port);
    const bell = openSync(
      join(dir.path, 'evtchn/h1.fifo'),
      constants.O_WRONLY | constants.O_NONBLOCK,
    );
    writeFileSync(bell, Buffer.of(1));
    closeSync(bell);
  }

  /** The guest consumes `in`. */
  function guestRead(): Buffer {
    const w = new Uint32Array(guestPage);
    const u8 = new Uint8Array(guestPage);
    const cons = w[IN.cons / 4]!;
    const n = (Atomics.load(w, IN.prod / 4) - cons) >>> 0;
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = u8[IN.data + ((cons + i) & (IN.size - 1))]!;
    Atomics.store(w, IN.cons / 4, (cons + n) >>> 0);
    if (n > 0) notifyDom0();
    return out;
  }

  it('hands received bytes to JS in order, across many ring laps, and backs up when nobody reads', async () => {
    id = start();
    const total = 64 * 1024;
    const data = Buffer.alloc(total, 0);
    for (let i = 0; i < total; i++) data[i] = (i * 7 + (i >> 9)) & 0xff;
    const got: Buffer[] = [];
    let sent = 0;
    // rxq holds 4096 bytes here: with no reads, the pump takes at most rxq + ring.
    for (let idle = 0; idle < 3; ) {
      const n = guestWrite(data.subarray(sent, sent + 2048));
      sent += n;
      idle = n === 0 ? idle + 1 : 0;
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
    expect(sent).toBe(4096 + 2048);
    expect(b().pumpStats(id)).toMatchObject({ rxBuffered: 4096, bytesIn: 4096, running: true });
    expect(events).toContain(PUMP_READABLE);
    // Reading makes room: the pump takes the rest of the ring, and so on to the end.
    for (;;) {
      for (let r = b().pumpRead(id, 1 << 20); r !== null; r = b().pumpRead(id, 1 << 20))
        got.push(r);
      if (sent < total) sent += guestWrite(data.subarray(sent, sent + 2048));
      const have = got.reduce((a, c) => a + c.length, 0);
      if (have === total) break;
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    expect(Buffer.compare(Buffer.concat(got), data)).toBe(0);
    // Each pass that moved bytes notified the guest: its pending bit and a byte on its doorbell.
    expect(Atomics.load(new Int32Array(guestEvents), PENDING) & (1 << GUEST.port)).not.toBe(0);
    expect(readSync(guestBell, Buffer.alloc(64))).toBeGreaterThan(0);
  });

  it('writes go into the ring (straight away while nothing is queued) and notify the guest', async () => {
    id = start();
    expect(b().pumpWrite(id, Buffer.from('hello'), 0, 5)).toBe(5);
    expect(guestRead().toString()).toBe('hello'); // already there: written on this thread
    // More than the ring and the queue hold: the rest is refused (backpressure), nothing lost.
    const big = Buffer.alloc(8192, 0x61);
    const took = b().pumpWrite(id, big, 0, big.length);
    expect(took).toBe(1024 + 4096);
    let got = guestRead().length;
    await waitFor(() => {
      got += guestRead().length;
      return got === took;
    });
    expect(b().pumpStats(id).bytesOut).toBe(5 + took);
  });

  it('a page unmapped under a running pump stays mapped until the pump stops', async () => {
    id = start();
    expect(b().unmap(page)).toBe(true); // detached for JS at once
    expect(page.byteLength).toBe(0);
    guestWrite(Buffer.from('still here'));
    await waitFor(() => b().pumpStats(id).rxBuffered === 10);
    expect(b().pumpRead(id, 100)?.toString()).toBe('still here');
    b().pumpStop(id);
    expect(b().pumpStats(id).running).toBe(false);
    page = new ArrayBuffer(0); // afterEach unmaps nothing twice
  });

  it('impossible indices stop the pump with PUMP_BROKEN_RX and it touches nothing', async () => {
    id = start();
    const w = new Uint32Array(guestPage);
    const cons = w[OUT.cons / 4]!;
    Atomics.store(w, OUT.prod / 4, (cons + 5000) >>> 0);
    notifyDom0();
    await waitFor(() => events.includes(PUMP_BROKEN_RX));
    expect(b().pumpStats(id)).toMatchObject({ broken: PUMP_BROKEN_RX, bytesIn: 0 });
    expect(w[OUT.cons / 4]).toBe(cons);
    expect(b().pumpWrite(id, Buffer.from('x'), 0, 1)).toBe(0);
  });

  it('refuses memory it did not map, and bad capacities', () => {
    const fail = (f: () => unknown, re: RegExp) => {
      let caught: unknown;
      try {
        f();
      } catch (e) {
        caught = e;
      }
      expect(isXenconsError(caught, 'ERR_INVALID_ARG'), String(caught)).toBe(true);
      expect((caught as Error).message).toMatch(re);
    };
    const wake = [1, DOM0.domid, DOM0.handle, DOM0.port];
    fail(
      () => b().pumpStart(new Uint8Array(4096), LAYOUTS, wake, dir.path, [4096, 4096, 0], () => {}),
      /mapping made by this addon/,
    );
    fail(
      () => b().pumpStart(new Uint8Array(page), LAYOUTS, wake, dir.path, [3000, 4096, 0], () => {}),
      /rxCapacity must be a power of two/,
    );
    fail(() => b().pumpRead(999_999, 1), /no ring pump/);
  });
});
