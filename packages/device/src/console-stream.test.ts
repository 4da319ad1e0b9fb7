import { createHash, randomBytes } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { once } from 'node:events';
import { consoleBackendRings, consoleFrontendRings, XENCONS_INTERFACE } from '@xencons/ring';
import { afterEach, describe, expect, it } from 'vitest';
import { ConsoleStream } from './console-stream.js';
import { DeviceError } from './device-errors.js';
import { FakeEventChannels } from './test/fake-evtchn.js';

const sha = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const tick = () => new Promise((resolve) => setImmediate(resolve));

/** A console page with both ends in this process: dom0's stream and the guest's. */
function consolePair(domid = 7, devid = 0) {
  const page = new ArrayBuffer(4096);
  const dom0 = new FakeEventChannels();
  const guest = new FakeEventChannels();
  FakeEventChannels.pair(dom0, 10, guest, 3);
  const back = consoleBackendRings(page);
  const front = consoleFrontendRings(page);
  const backend = new ConsoleStream({
    domid,
    devid,
    side: 'backend',
    rx: back.out,
    tx: back.in,
    evtchn: dom0,
    port: 10,
  });
  const frontend = new ConsoleStream({
    domid,
    devid,
    side: 'frontend',
    rx: front.in,
    tx: front.out,
    evtchn: guest,
    port: 3,
  });
  backend.pump();
  frontend.pump();
  return { page, dom0, guest, backend, frontend, words: new Uint32Array(page) };
}

/** Reads exactly `n` bytes from `stream` (its own data handler). */
function collect(stream: ConsoleStream, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= n) {
        stream.off('data', onData);
        stream.pause();
        resolve(Buffer.concat(chunks));
      }
    };
    stream.on('data', onData);
    stream.once('error', reject);
  });
}

/** Writes `data` in pieces of random size, waiting for each write's callback (no buffering). */
async function writeAll(stream: ConsoleStream, data: Uint8Array, seed = 1): Promise<void> {
  let at = 0;
  let s = seed;
  while (at < data.length) {
    s = (s * 1103515245 + 12345) >>> 0;
    const n = Math.min(data.length - at, 1 + (s % 5000));
    await new Promise<void>((resolve, reject) =>
      stream.write(data.subarray(at, at + n), (err) => (err ? reject(err) : resolve())),
    );
    at += n;
  }
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanups.splice(0)) f();
});

describe('ConsoleStream', () => {
  it('carries bytes both ways at once, intact, through the 2048-byte out and 1024-byte in rings', async () => {
    const { backend, frontend } = consolePair();
    const output = randomBytes(1 << 20);
    const input = randomBytes(512 << 10);
    const [gotOut, gotIn] = await Promise.all([
      collect(backend, output.length),
      collect(frontend, input.length),
      writeAll(frontend, output, 1),
      writeAll(backend, input, 2),
    ]);
    expect(sha(gotOut)).toBe(sha(output));
    expect(sha(gotIn)).toBe(sha(input));
    expect(backend.stats()).toMatchObject({ bytesIn: output.length, bytesOut: input.length });
    expect(frontend.stats()).toMatchObject({ rxQueued: 0, txQueued: 0 });
  });

  it('backpressure: a paused reader fills the ring and holds the writer back; nothing is dropped', async () => {
    const { backend, frontend, dom0, guest } = consolePair();
    const data = randomBytes(8192);
    let written = false;
    frontend.write(data, () => {
      written = true;
    });
    for (let i = 0; i < 20; i++) await tick();
    // Nobody reads the backend: exactly one ring's worth went in, and the write waits.
    expect(written).toBe(false);
    expect(frontend.stats().txQueued).toBe(XENCONS_INTERFACE.out.size);
    // The backend left its port masked: more notifications cost it nothing until it reads.
    expect(dom0.isMasked(10)).toBe(true);
    const deliveries = dom0.deliveries.get(10) ?? 0;
    for (let i = 0; i < 5; i++) {
      guest.notify(3); // a guest that keeps kicking
      await tick();
    }
    expect(dom0.deliveries.get(10) ?? 0).toBe(deliveries);

    const got = await collect(backend, data.length);
    expect(Buffer.compare(got, data)).toBe(0);
    await tick();
    expect(written).toBe(true);
  });

  it('notifies the peer after consuming, so a writer waiting for space wakes up', async () => {
    const { backend, frontend, guest } = consolePair();
    frontend.write(randomBytes(3000));
    for (let i = 0; i < 10; i++) await tick();
    const before = guest.deliveries.get(3) ?? 0;
    await collect(backend, 3000);
    await tick();
    expect(guest.deliveries.get(3) ?? 0).toBeGreaterThan(before);
  });

  it('hangup delivers what is left in the ring, even to a paused reader, then ends; later writes fail', async () => {
    const { backend, frontend } = consolePair();
    await new Promise<void>((resolve) => frontend.write('last words', () => resolve()));
    backend.hangup();
    expect(backend.state).toBe('closed');
    const chunks: Buffer[] = [];
    backend.on('data', (c: Buffer) => chunks.push(c));
    await once(backend, 'end');
    expect(Buffer.concat(chunks).toString()).toBe('last words');
    const error = await new Promise<Error | null | undefined>((resolve) => {
      backend.write('too late', resolve);
    });
    expect(error).toBeInstanceOf(DeviceError);
    expect(error).toMatchObject({ code: 'ERR_CONSOLE_CLOSED' });
  });

  it('a pending write fails with ERR_CONSOLE_CLOSED when the console hangs up', async () => {
    const { backend } = consolePair();
    const result = new Promise<Error | null | undefined>((resolve) =>
      backend.write(randomBytes(4096), resolve),
    );
    for (let i = 0; i < 5; i++) await tick();
    backend.hangup();
    backend.resume();
    expect(await result).toMatchObject({ code: 'ERR_CONSOLE_CLOSED' });
  });

  it('hostile indices break only that console, with a typed error and one clear line', async () => {
    const messages: { line: string; domid: number; devid: number }[] = [];
    const onBroken = (m: unknown) => messages.push(m as (typeof messages)[number]);
    subscribe('xencons:device:broken', onBroken);
    cleanups.push(() => unsubscribe('xencons:device:broken', onBroken));

    const victim = consolePair(5, 0);
    const bystander = consolePair(6, 0);
    victim.backend.resume();
    // The guest claims 5000 bytes in a 2048-byte ring: out_prod = out_cons + 5000.
    const prodWord = XENCONS_INTERFACE.out.prodOffset / 4;
    const consWord = XENCONS_INTERFACE.out.consOffset / 4;
    victim.words[prodWord] = (victim.words[consWord]! + 5000) >>> 0;
    victim.guest.notify(3);
    const [error] = (await once(victim.backend, 'error')) as [DeviceError];
    expect(error).toBeInstanceOf(DeviceError);
    expect(error.code).toBe('ERR_CONSOLE_BROKEN');
    expect((error.cause as { code?: string }).code).toBe('ERR_RING_CORRUPT');
    expect(error.details).toMatchObject({ domid: 5, devid: 0, side: 'backend', size: 2048 });
    expect(victim.backend.state).toBe('broken');
    expect(messages).toHaveLength(1);
    expect(messages[0]!.line).toMatch(
      /^domain 5 console 0: the guest wrote impossible ring indices \(ring xencons_interface\.out is corrupt: .*\); console closed; other consoles are unaffected$/,
    );

    const data = randomBytes(10_000);
    const [got] = await Promise.all([
      collect(bystander.backend, data.length),
      writeAll(bystander.frontend, data),
    ]);
    expect(sha(got)).toBe(sha(data));
  });

  it('a broken stream with no error listener of its user does not crash the process', async () => {
    const { backend, words } = consolePair(4, 0);
    backend.resume();
    words[XENCONS_INTERFACE.out.prodOffset / 4] = 0x8000_0000;
    backend.pump();
    // (events.once would reject on 'error': wait for 'close' alone)
    await new Promise((resolve) => backend.on('close', resolve));
    expect(backend.state).toBe('broken');
    expect(backend.errored).toMatchObject({ code: 'ERR_CONSOLE_BROKEN' });
  });

  it('the frontend breaks the same way when dom0 corrupts the in ring', async () => {
    const { frontend, words } = consolePair(9, 1);
    frontend.resume();
    words[XENCONS_INTERFACE.in.prodOffset / 4] = 0xdead_beef;
    frontend.pump();
    const [error] = (await once(frontend, 'error')) as [DeviceError];
    expect(error.code).toBe('ERR_CONSOLE_BROKEN');
    expect(error.message).toMatch(/^domain 9 console 1: the backend wrote impossible ring indices/);
  });
});
