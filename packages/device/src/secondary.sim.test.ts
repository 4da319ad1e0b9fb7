import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { SimDomain } from '@xencons/sim';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listSecondaryConsoles, probeConsole } from './console-nodes.js';
import type { ConsoleStream } from './console-stream.js';
import { openPrimaryConsoleBackend } from './primary-backend.js';
import { type SecondaryConsoleBackend, serveSecondaryConsole } from './secondary-backend.js';
import {
  eventually,
  openSimFixture,
  removeGuestScript,
  type SimFixture,
  TextTap,
} from './test/sim-support.js';
import { createSecondaryConsole, removeSecondaryConsole } from './toolstack.js';
import { XenbusState } from './xenbus-state.js';

const { InitWait, Connected, Closing, Closed } = XenbusState;

let fx: SimFixture;
beforeEach(async () => {
  fx = await openSimFixture();
});
afterEach(async () => {
  await fx.close();
});
afterAll(removeGuestScript);

/** A guest in `secondary` mode and the primary console that drives it. */
async function secondaryGuest(name: string) {
  const domain = await fx.guest(name, 'secondary');
  const control = await openPrimaryConsoleBackend({ ...fx.deps, domid: domain.domid });
  const tap = new TextTap(control.stream);
  await tap.line(/^ready$/);
  return {
    domain,
    control,
    tap,
    say: (line: string) => control.stream.write(`${line}\n`),
  };
}

/** Echo through the guest's secondary console: bytes out, the same bytes back. */
async function echoes(stream: ConsoleStream, size: number): Promise<void> {
  const data = randomBytes(size);
  const chunks: Buffer[] = [];
  let got = 0;
  const back = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= size) {
        stream.off('data', onData);
        resolve();
      }
    };
    stream.on('data', onData);
    stream.once('error', reject);
  });
  for (let at = 0; at < size; at += 3000) {
    if (!stream.write(data.subarray(at, at + 3000))) await once(stream, 'drain');
  }
  await back;
  const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
  expect(sha(Buffer.concat(chunks))).toBe(sha(data));
}

function recordStates(backend: SecondaryConsoleBackend): XenbusState[] {
  const states: XenbusState[] = [];
  backend.on('state', (_from, to) => states.push(to));
  return states;
}

const frontendState = (domain: SimDomain, devid: number) =>
  fx.host.xs.readString(`/local/domain/${domain.domid}/device/console/${devid}/state`);

describe('secondary consoles on the simulated host', () => {
  it('the toolstack helper writes libxl’s nodes and permissions', async () => {
    const g = await fx.guest('nodes', 'echo');
    const made = await createSecondaryConsole(fx.host.xs, { domid: g.domid, name: 'serial' });
    const d = g.domid;
    const fe = `/local/domain/${d}/device/console/1`;
    const be = `/local/domain/0/backend/console/${d}/1`;
    expect(made).toEqual({
      domid: d,
      devid: 1,
      backendDomid: 0,
      frontendPath: fe,
      backendPath: be,
    });
    const xs = fx.host.xs;
    const read = (p: string) => xs.readString(p);
    expect(await read(`${fe}/backend`)).toBe(be);
    expect(await read(`${fe}/backend-id`)).toBe('0');
    expect(await read(`${fe}/state`)).toBe('1');
    expect(await read(`${fe}/protocol`)).toBe('vt100');
    expect(await read(`${fe}/limit`)).toBe('1048576');
    expect(await read(`${fe}/type`)).toBe('xencons');
    expect(await read(`${fe}/output`)).toBe('pty');
    expect(await read(`${fe}/tty`)).toBe('');
    expect(await read(`${fe}/name`)).toBe('serial');
    expect(await read(`${be}/frontend`)).toBe(fe);
    expect(await read(`${be}/frontend-id`)).toBe(String(d));
    expect(await read(`${be}/online`)).toBe('1');
    expect(await read(`${be}/state`)).toBe('1');
    expect(await read(`${be}/name`)).toBe('serial');
    const guestOwned = { owner: d, others: 'none', entries: [{ domid: 0, access: 'read' }] };
    const dom0Owned = { owner: 0, others: 'none', entries: [{ domid: d, access: 'read' }] };
    expect(await xs.getPerms(fe)).toEqual(guestOwned);
    expect(await xs.getPerms(`${fe}/state`)).toEqual(guestOwned);
    expect(await xs.getPerms(`${fe}/type`)).toEqual(dom0Owned);
    expect(await xs.getPerms(`${fe}/limit`)).toEqual(dom0Owned);
    expect(await xs.getPerms(be)).toEqual(dom0Owned);
    expect(await xs.getPerms(`${be}/state`)).toEqual(dom0Owned);

    // The next free id, and Linux's one-digit rule.
    expect((await createSecondaryConsole(xs, { domid: d })).devid).toBe(2);
    expect(await listSecondaryConsoles(xs, d)).toEqual([1, 2]);
    await expect(createSecondaryConsole(xs, { domid: d, devid: 1 })).rejects.toMatchObject({
      code: 'ERR_CONSOLE_EXISTS',
    });
    await expect(createSecondaryConsole(xs, { domid: d, devid: 10 })).rejects.toMatchObject({
      code: 'ERR_CONSOLE_DEVID',
    });
    for (let devid = 3; devid <= 9; devid++) await createSecondaryConsole(xs, { domid: d });
    await expect(createSecondaryConsole(xs, { domid: d })).rejects.toMatchObject({
      code: 'ERR_CONSOLE_DEVID',
    });
    expect((await createSecondaryConsole(xs, { domid: d, linuxGuest: false })).devid).toBe(10);
    expect((await probeConsole(xs, d, 10)).status).toBe('ready');
    expect((await probeConsole(xs, d, 11)).status).toBe('absent');
  });

  it('connect, guest close, guest reopen, toolstack remove: the backend follows every state', async () => {
    const g = await secondaryGuest('sec');
    await createSecondaryConsole(fx.host.xs, { domid: g.domain.domid, devid: 1 });
    const backend = await serveSecondaryConsole({ ...fx.deps, domid: g.domain.domid, devid: 1 });
    const states = recordStates(backend);
    expect(backend.state).toBe(InitWait);
    expect(backend.stream).toBeNull();

    // Connect: the guest's frontend publishes, we map and connect, it says Connected.
    const connected = once(backend, 'connect') as Promise<[ConsoleStream]>;
    g.say('open 1');
    await g.tap.line(/^opened 1$/);
    const [first] = await connected;
    expect(backend.state).toBe(Connected);
    expect(await frontendState(g.domain, 1)).toBe('4');
    expect(backend.limit).toBe(1048576);
    await echoes(first, 200_000);
    g.say('send 1 from the guest');
    const firstTap = new TextTap(first);
    await firstTap.line(/^from the guest$/);

    // The guest removes the console: Closing, we follow, it goes Closed, we unmap and say Closed.
    const ended = once(first, 'end');
    g.say('close 1');
    await g.tap.line(/^closed 1 guest$/);
    await ended;
    await eventually('backend Closed', () => backend.state === Closed);
    expect(await frontendState(g.domain, 1)).toBe('6');
    expect(backend.stream).toBeNull();
    expect(states).toEqual([Connected, Closing, Closed]);

    // The guest opens it again: Initialising brings us back to InitWait, then a new connection.
    const reconnected = once(backend, 'connect') as Promise<[ConsoleStream]>;
    g.say('open 1');
    await g.tap.line(/^opened 1$/);
    const [second] = await reconnected;
    expect(second).not.toBe(first);
    expect(backend.connections).toBe(2);
    expect(states).toEqual([Connected, Closing, Closed, InitWait, Connected]);
    await echoes(second, 50_000);

    // The toolstack removes the device: we close, the guest's frontend follows, nodes go.
    const closed = once(backend, 'close');
    const result = await removeSecondaryConsole(fx.host.xs, { domid: g.domain.domid, devid: 1 });
    expect(result).toEqual({ clean: true });
    await g.tap.line(/^closed 1 backend$/);
    await closed;
    expect(backend.closed).toBe(true);
    expect(await fx.host.xs.exists(`/local/domain/${g.domain.domid}/device/console/1`)).toBe(false);
    expect(await fx.host.xs.exists(backend.backendPath)).toBe(false);
    await g.control.close();
  });

  it('a frontend that comes first waits for the backend; a restarted backend picks the connection up', async () => {
    const g = await secondaryGuest('early');
    await createSecondaryConsole(fx.host.xs, { domid: g.domain.domid, devid: 3 });
    g.say('open 3');
    await eventually(
      'the frontend to publish',
      async () => (await frontendState(g.domain, 3)) === '3',
    );

    const one = await serveSecondaryConsole({ ...fx.deps, domid: g.domain.domid, devid: 3 });
    await g.tap.line(/^opened 3$/);
    expect(one.state).toBe(Connected);
    await echoes(one.stream!, 20_000);

    // The daemon goes away without a word (detach), then comes back: no handshake for the guest.
    const stream = one.stream!;
    const ended = once(stream, 'end');
    stream.resume();
    await one.close();
    await ended;
    expect(await frontendState(g.domain, 3)).toBe('4');
    const two = await serveSecondaryConsole({ ...fx.deps, domid: g.domain.domid, devid: 3 });
    expect(two.state).toBe(Connected);
    await echoes(two.stream!, 20_000);
    g.say('state 3');
    await g.tap.line(/^state 3 4 4$/);
    await two.close();
    await g.control.close();
  });

  it('directories removed under a live connection (no handshake): both ends let go', async () => {
    const g = await secondaryGuest('yanked');
    await createSecondaryConsole(fx.host.xs, { domid: g.domain.domid, devid: 2 });
    const backend = await serveSecondaryConsole({ ...fx.deps, domid: g.domain.domid, devid: 2 });
    const connected = once(backend, 'connect') as Promise<[ConsoleStream]>;
    g.say('open 2');
    await g.tap.line(/^opened 2$/);
    const [stream] = await connected;
    stream.resume();
    const ended = once(stream, 'end');
    const closed = once(backend, 'close');
    const portsBefore = fx.evtchn.ports.size;
    await fx.host.xs.rm(`/local/domain/${g.domain.domid}/device/console/2`);
    await fx.host.xs.rm(backend.backendPath);
    await Promise.all([ended, closed]);
    await g.tap.line(/^closed 2 backend$/);
    // Unbound: from the shared handle, or with the connection's own (pumped) handle.
    expect(fx.evtchn.ports.size).toBe(stream.pumped ? portsBefore : portsBefore - 1);
    // The backend did not write its state back into the removed directory.
    expect(await fx.host.xs.exists(backend.backendPath)).toBe(false);
    await g.control.close();
  });

  it('refuses what it must not serve', async () => {
    const g = await fx.guest('refused', 'echo');
    const d = g.domid;
    await expect(serveSecondaryConsole({ ...fx.deps, domid: d, devid: 0 })).rejects.toMatchObject({
      code: 'ERR_CONSOLE_DEVID',
    });
    await expect(serveSecondaryConsole({ ...fx.deps, domid: d, devid: 4 })).rejects.toMatchObject({
      code: 'ERR_CONSOLE_NOT_READY',
    });
    await createSecondaryConsole(fx.host.xs, { domid: d, devid: 4, type: 'ioemu' });
    await expect(serveSecondaryConsole({ ...fx.deps, domid: d, devid: 4 })).rejects.toMatchObject({
      code: 'ERR_CONSOLE_FOREIGN_TYPE',
    });
    const qemuLike = await serveSecondaryConsole({
      ...fx.deps,
      domid: d,
      devid: 4,
      types: ['ioemu'],
    });
    expect(qemuLike.state).toBe(InitWait);
    await qemuLike.close();
  });
});
