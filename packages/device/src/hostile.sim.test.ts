import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { once } from 'node:events';
import { loadNative } from '@xencons/native';
import type { SimDomain } from '@xencons/sim';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ConsoleStream } from './console-stream.js';
import type { DeviceError } from './device-errors.js';
import { openPrimaryConsoleBackend } from './primary-backend.js';
import { serveSecondaryConsole } from './secondary-backend.js';
import { patternBytes } from './test/pattern.js';
import {
  eventually,
  openSimFixture,
  removeGuestScript,
  type SimFixture,
  TextTap,
} from './test/sim-support.js';
import { createSecondaryConsole } from './toolstack.js';
import { XenbusState } from './xenbus-state.js';

interface Message {
  domid: number;
  devid: number;
  side: string;
  line: string;
  error: DeviceError;
}

let fx: SimFixture;
let messages: { broken: Message[]; connectFailed: Message[] };
const listeners = {
  broken: (m: unknown) => messages.broken.push(m as Message),
  connectFailed: (m: unknown) => messages.connectFailed.push(m as Message),
};

beforeEach(async () => {
  messages = { broken: [], connectFailed: [] };
  subscribe('xencons:device:broken', listeners.broken);
  subscribe('xencons:device:connect-failed', listeners.connectFailed);
  fx = await openSimFixture();
});
afterEach(async () => {
  unsubscribe('xencons:device:broken', listeners.broken);
  unsubscribe('xencons:device:connect-failed', listeners.connectFailed);
  await fx.close();
});
afterAll(removeGuestScript);

/** A well-behaved guest whose primary console echoes, to show it is unaffected. */
async function bystander() {
  const domain = await fx.guest('bystander', 'echo');
  const con = await openPrimaryConsoleBackend({ ...fx.deps, domid: domain.domid });
  const tap = new TextTap(con.stream);
  await tap.line(/^echo guest bystander/);
  let n = 0;
  return {
    con,
    async stillEchoes() {
      const line = `still here ${++n}`;
      con.stream.write(`${line}\n`);
      await tap.line(new RegExp(`^${line}$`));
    },
  };
}

const logged = (domain: SimDomain, line: string) =>
  eventually(`"${line}" in the guest's log`, () => fx.guestLog(domain).includes(line));

describe('hostile guests break only their own console', () => {
  it('random indices and garbage on the primary console: ERR_CONSOLE_BROKEN, one line, the rest carry on', async () => {
    const good = await bystander();
    const bad = await fx.guest('hostile', 'hostile-indices');
    const con = await openPrimaryConsoleBackend({ ...fx.deps, domid: bad.domid });
    // The native pump finds the indices, where the native core loads.
    expect(con.stream.pumped).toBe(loadNative() !== null);
    const tap = new TextTap(con.stream);
    const failed = once(con.stream, 'error') as Promise<[DeviceError]>;
    await tap.line(/^hello$/);
    const [error] = await failed;
    expect(error.code).toBe('ERR_CONSOLE_BROKEN');
    expect((error.cause as { code: string }).code).toBe('ERR_RING_CORRUPT');
    expect(con.state).toBe('broken');
    expect(messages.broken).toHaveLength(1);
    expect(messages.broken[0]).toMatchObject({ domid: bad.domid, devid: 0, side: 'backend' });
    expect(messages.broken[0]!.line).toMatch(
      new RegExp(
        `^domain ${bad.domid} console 0: the guest wrote impossible ring indices \\(ring xencons_interface\\.out is corrupt: prod 0x[0-9a-f]{8} - cons 0x[0-9a-f]{8} = \\d+ exceeds its size 2048\\); console closed; other consoles are unaffected$`,
      ),
    );
    // The port and the page were let go at once; close() still works.
    await eventually('the port released', () => !con.evtchn.ports.has(con.info.localPort));
    await con.close();
    expect(con.state).toBe('broken');
    await logged(bad, 'corrupted');
    await good.stillEchoes();
    await good.con.close();
  });

  it('a guest that vanishes mid-write: dom0 keeps every byte that reached the ring, in order', async () => {
    const good = await bystander();
    const after = 300_000;
    const destroyed = new Promise<void>((resolve) =>
      fx.host.on('domainDestroyed', (d) => d.name === 'vanisher' && resolve()),
    );
    const bad = await fx.guest('vanisher', 'vanish', {
      VANISH_AFTER: String(after),
      SEED_OUT: '5',
    });
    const con = await openPrimaryConsoleBackend({ ...fx.deps, domid: bad.domid });
    expect(con.stream.pumped).toBe(loadNative() !== null);
    const chunks: Buffer[] = [];
    let total = 0;
    con.stream.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      total += chunk.length;
    });
    await destroyed;
    // What was in the ring when the guest died is still there to drain.
    await eventually('the bytes written before the kill', () => total >= after);
    const ended = once(con.stream, 'end');
    await con.close();
    await ended;
    const got = Buffer.concat(chunks);
    expect(got.length).toBeGreaterThanOrEqual(after);
    expect(Buffer.compare(got, patternBytes(5, 0, got.length))).toBe(0);
    expect(con.state).toBe('closed');
    await good.stillEchoes();
    await good.con.close();
  });

  it('a secondary frontend publishing garbage or a grant it does not own gets Closing, and a clear line', async () => {
    const good = await bystander();
    for (const [devid, ringRef, port, reason] of [
      [1, 'not-a-number', '12', /ring-ref "not-a-number" is not an unsigned 32-bit number/],
      [2, '4000', '12', /could not map grant 4000/],
      [3, '8', '9999', /could not map grant 8|could not bind event channel 9999/],
    ] as const) {
      const g = await fx.guest(`badnodes${devid}`, 'secondary-bad-nodes', {
        DEVID: String(devid),
        RING_REF: ringRef,
        PORT: port,
      });
      await createSecondaryConsole(fx.host.xs, { domid: g.domid, devid });
      const backend = await serveSecondaryConsole({ ...fx.deps, domid: g.domid, devid });
      let connected = false;
      backend.on('connect', () => {
        connected = true;
      });
      const fe = `/local/domain/${g.domid}/device/console/${devid}`;
      await logged(g, 'published');
      await eventually('backend Closing', () => backend.state === XenbusState.Closing);
      expect(connected).toBe(false);
      const message = messages.connectFailed.find((m) => m.domid === g.domid);
      expect(message?.line).toMatch(new RegExp(`^domain ${g.domid} console ${devid}: could not `));
      expect(message?.line).toMatch(reason);
      expect(message?.error.code).toBe('ERR_CONSOLE_CONNECT');
      // It stays Closing while the frontend insists; once it closes, Closed.
      await fx.host.xs.write(`${fe}/state`, '4');
      await backend.settled();
      expect(backend.state).toBe(XenbusState.Closing);
      await fx.host.xs.write(`${fe}/state`, '6');
      await eventually('backend Closed', () => backend.state === XenbusState.Closed);
      await backend.close();
    }
    // The bystander's only (on its own handle when a native pump serves it).
    expect(fx.evtchn.ports.size).toBe(good.con.evtchn === fx.evtchn ? 1 : 0);
    await good.stillEchoes();
    await good.con.close();
  });

  it('a secondary frontend that corrupts its ring after connecting: broken stream, Closing, others fine', async () => {
    const good = await bystander();
    const bad = await fx.guest('corrupter', 'secondary-corrupt', { DEVID: '1' });
    await createSecondaryConsole(fx.host.xs, { domid: bad.domid, devid: 1 });
    const backend = await serveSecondaryConsole({ ...fx.deps, domid: bad.domid, devid: 1 });
    const [stream] = (await once(backend, 'connect')) as [ConsoleStream];
    const tap = new TextTap(stream);
    const failed = once(stream, 'error') as Promise<[DeviceError]>;
    await tap.line(/^hi from a bad frontend$/);
    const [error] = await failed;
    expect(error.code).toBe('ERR_CONSOLE_BROKEN');
    expect(error.details).toMatchObject({ domid: bad.domid, devid: 1, side: 'backend' });
    await eventually('backend Closing', () => backend.state === XenbusState.Closing);
    expect(backend.stream).toBeNull();
    expect(messages.broken.map((m) => [m.domid, m.devid])).toEqual([[bad.domid, 1]]);
    await good.stillEchoes();
    await backend.close();
    await good.con.close();
  });
});
