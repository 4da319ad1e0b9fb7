import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { loadNative, nativeUnavailableReason } from '@xencons/native';
import { requirement } from '@xencons/test-utils';
import { afterAll, afterEach, beforeEach, expect, it } from 'vitest';
import { openPrimaryConsoleBackend } from './primary-backend.js';
import { patternBytes } from './test/pattern.js';
import {
  eventually,
  openSimFixture,
  removeGuestScript,
  type SimFixture,
} from './test/sim-support.js';

// The native ring pump under ConsoleStream, both ends: dom0 here, the guest in its own process
// (test/console-guest.ts, MODE primary-stream, which logs whether its stream is pumped).

let fx: SimFixture;
beforeEach(async () => {
  fx = await openSimFixture();
});
afterEach(async () => {
  await fx.close();
});
afterAll(removeGuestScript);

const MiB = 1 << 20;
const native = loadNative() === null ? (nativeUnavailableReason() ?? 'not loaded') : null;

/** CPU time (ms) of every thread of `pid`, from /proc (the guest's process). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

function checkPattern(chunks: Buffer[], seed: number, length: number): void {
  const all = Buffer.concat(chunks);
  expect(all.length).toBeGreaterThanOrEqual(length);
  expect(createHash('sha256').update(all.subarray(0, length)).digest('hex')).toBe(
    createHash('sha256')
      .update(patternBytes(seed, 0, length))
      .digest('hex'),
  );
}

requirement(
  'the native core (@xencons/native)',
  native,
).describe('the native ring pump (both ends of a console, separate processes)', () => {
  it('moves megabytes both ways at once, in order, and both ends are pumped', async () => {
    const send = 16 * MiB;
    const recv = 4 * MiB;
    const g = await fx.guest('pumped', 'primary-stream', {
      SEND: String(send),
      RECV: String(recv),
      SEED_OUT: '31',
      SEED_IN: '32',
    });
    const con = await openPrimaryConsoleBackend({ ...fx.deps, domid: g.domid });
    expect(con.stream.pumped).toBe(true);
    expect(con.evtchn).not.toBe(fx.deps.evtchn);
    const received: Buffer[] = [];
    let total = 0;
    const done = new Promise<void>((resolve, reject) => {
      con.stream.on('error', reject);
      con.stream.on('data', (chunk: Buffer) => {
        received.push(chunk);
        total += chunk.length;
        if (total > send && Buffer.concat(received).subarray(send).includes('\n', 1)) resolve();
      });
    });
    const input = patternBytes(32, 0, recv);
    for (let at = 0; at < recv; at += 65536) {
      if (!con.stream.write(input.subarray(at, at + 65536))) await once(con.stream, 'drain');
    }
    await done;
    checkPattern(received, 31, send);
    const inputHash = createHash('sha256').update(input).digest('hex');
    expect(Buffer.concat(received).subarray(send).toString()).toBe(`\nDONE in=ok ${inputHash}\n`);
    expect(fx.guestLog(g)).toContain('pumped true');
    const stats = con.stream.stats();
    expect(stats).toMatchObject({ pumped: true, bytesIn: total, bytesOut: recv });
    // Large batches: far fewer hand-overs to JS than 2 KiB ring laps.
    expect(stats.pump!.signals).toBeLessThan(send / 2048 / 4);
    await con.close();
  });

  it('a paused reader fills the pump buffer, then the ring; the guest waits and nothing is lost', async () => {
    const send = 2 * MiB;
    const g = await fx.guest('paused', 'primary-stream', {
      SEND: String(send),
      RECV: '1',
      SEED_OUT: '41',
      SEED_IN: '42',
    });
    const con = await openPrimaryConsoleBackend({ ...fx.deps, domid: g.domid });
    expect(con.stream.pumped).toBe(true);
    con.stream.pause();
    const full = () => {
      const s = con.stream.stats();
      return s.rxQueued === 2048 && s.pump!.rxBuffered === 256 * 1024;
    };
    await eventually('the pump buffer and the ring full', full);
    // Held there: the guest is blocked, not dropping.
    const before = con.stream.stats().pump!.bytesIn;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(full()).toBe(true);
    expect(con.stream.stats().pump!.bytesIn).toBe(before);
    expect(before).toBeLessThan(send);
    const received: Buffer[] = [];
    let total = 0;
    con.stream.on('data', (chunk: Buffer) => {
      received.push(chunk);
      total += chunk.length;
    });
    con.stream.resume();
    await eventually('every byte', () => total >= send);
    checkPattern(received, 41, send);
    con.stream.write(patternBytes(42, 0, 1)); // RECV=1: then the guest says DONE
    await eventually('the DONE line', () => Buffer.concat(received).includes('DONE in=ok'));
    await con.close();
  });

  it('an idle console costs no CPU: both pumps sleep, neither wakes', async () => {
    const g = await fx.guest('idle', 'primary-stream', {
      SEND: '100',
      RECV: String(MiB), // never comes: the guest waits for input forever
      SEED_OUT: '51',
      SEED_IN: '52',
    });
    const con = await openPrimaryConsoleBackend({ ...fx.deps, domid: g.domid });
    expect(con.stream.pumped).toBe(true);
    let total = 0;
    con.stream.on('data', (chunk: Buffer) => {
      total += chunk.length;
    });
    await eventually('the greeting', () => total >= 100);
    await eventually('the guest reports its stream', () => fx.guestLog(g).includes('pumped true'));
    // Let both settle: a pump gives its buffer's pages back one quiet second after the last
    // bytes (one wake-up), then sleeps with no timeout.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const sleeps = con.stream.stats().pump!.sleeps;
    const ours = process.cpuUsage();
    const guest0 = cpuMs(g.pid!);
    const t0 = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const ms = performance.now() - t0;
    const used = process.cpuUsage(ours);
    const oursMs = (used.user + used.system) / 1000;
    const guestMs = cpuMs(g.pid!) - guest0;
    // Bounds, not speeds: a polling pump would spend far more than 5 % of the second.
    expect(oursMs / ms).toBeLessThan(0.05);
    expect(guestMs / ms).toBeLessThan(0.05);
    // The dom0 pump did not even wake up.
    expect(con.stream.stats().pump!.sleeps).toBe(sleeps);
    await con.close();
  });

  it('with XENCONS_PUMP=0 the console takes the JS path and still carries both ways', async () => {
    const send = 1 * MiB;
    const recv = 256 * 1024;
    const g = await fx.guest('unpumped', 'primary-stream', {
      SEND: String(send),
      RECV: String(recv),
      SEED_OUT: '61',
      SEED_IN: '62',
    });
    process.env.XENCONS_PUMP = '0';
    let con: Awaited<ReturnType<typeof openPrimaryConsoleBackend>>;
    try {
      con = await openPrimaryConsoleBackend({ ...fx.deps, domid: g.domid });
    } finally {
      delete process.env.XENCONS_PUMP;
    }
    expect(con.stream.pumped).toBe(false);
    expect(con.evtchn).toBe(fx.deps.evtchn);
    const received: Buffer[] = [];
    let total = 0;
    const done = new Promise<void>((resolve) => {
      con.stream.on('data', (chunk: Buffer) => {
        received.push(chunk);
        total += chunk.length;
        if (total > send && Buffer.concat(received).subarray(send).includes('\n', 1)) resolve();
      });
    });
    const input = patternBytes(62, 0, recv);
    for (let at = 0; at < recv; at += 4096) {
      if (!con.stream.write(input.subarray(at, at + 4096))) await once(con.stream, 'drain');
    }
    await done;
    checkPattern(received, 61, send);
    expect(Buffer.concat(received).subarray(send).toString()).toMatch(/^\nDONE in=ok /);
    await con.close();
  });
});
