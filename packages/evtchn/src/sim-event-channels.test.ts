import { join } from 'node:path';
import { nativeUnavailableReason } from '@xencons/native';
import {
  connectHypervisor,
  type Hypervisor,
  type HypervisorClient,
  readDom0Token,
  startHypervisor,
} from '@xencons/sim-hypervisor';
import { makeTempDir, requirement } from '@xencons/test-utils';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { EvtchnCode } from './evtchn-errors.js';
import { openLinuxEventChannels } from './linux-event-channels.js';
import { openEventChannels } from './open-event-channels.js';
import { openSimEventChannels } from './sim-event-channels.js';

// What only the simulated backend has (attach, losing the host) and how a backend is chosen.
// The behaviour both backends share is in the conformance suite.

const native = requirement('the native addon', nativeUnavailableReason());

native.describe('the simulated backend', () => {
  let scratch: ReturnType<typeof makeTempDir>;
  let dir: string;
  let hv: Hypervisor | null;
  let dom0: HypervisorClient;

  beforeEach(async () => {
    scratch = makeTempDir('xencons-evtchn-sim-');
    dir = join(scratch.path, 'host');
    hv = await startHypervisor({ dir });
    dom0 = await connectHypervisor({ dir, domid: 0, token: readDom0Token(dir) });
  });

  afterEach(async () => {
    dom0.close();
    await hv?.close();
    scratch.remove();
  });

  it('openNativeHandle: a handle whose doorbell JS never reads, with what a native waiter needs', async () => {
    const guest = await dom0.createDomain({ name: 'n' });
    const { port: guestPort } = await dom0.allocUnboundFor(guest.domid, 0);
    const shared = await openSimEventChannels(dom0);
    expect(shared.nativeWake).toBeUndefined();
    const own = await shared.openNativeHandle();
    expect(own.nativeWake).toMatchObject({ kind: 'sim', dir, domid: 0 });
    const local = await own.bindInterdomain(guest.domid, guestPort);
    const heard: number[] = [];
    own.onEvent((port) => heard.push(port));
    const hc = await connectHypervisor({ dir, domid: guest.domid, token: guest.token });
    const g = await openSimEventChannels(hc, { ownsConnection: true });
    await g.attach(guestPort);
    g.notify(guestPort);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(heard).toEqual([]); // left to the native waiter
    // The port is ours all the same: notify and unbind work through it.
    own.notify(local);
    await own.close();
    expect(own.ports.size).toBe(0);
    await g.close();
    await shared.close();
  });

  it('attach: a guest takes over the port the toolstack allocated, with the events already pending', async () => {
    const guest = await dom0.createDomain({ name: 'g' });
    const { port: guestPort } = await dom0.allocUnboundFor(guest.domid, 0);
    const backend = await openSimEventChannels(dom0);
    const local = await backend.bindInterdomain(guest.domid, guestPort);
    backend.notify(local); // pending on the guest's port; no handle has it yet
    const hc = await connectHypervisor({ dir, domid: guest.domid, token: guest.token });
    const channels = await openSimEventChannels(hc, { ownsConnection: true });
    const it = channels.events();
    expect(await channels.attach(guestPort)).toBe(guestPort);
    expect(channels.ports.has(guestPort)).toBe(true);
    expect(await it.next()).toEqual({ value: guestPort, done: false });
    channels.unmask(guestPort);
    await expect(channels.attach(guestPort + 100)).rejects.toMatchObject({
      code: EvtchnCode.BAD_PORT,
    });
    await channels.close();
    await backend.close();
  });

  it('losing the host closes the handle with ERR_EVTCHN_CLOSED, reported once', async () => {
    const channels = await openSimEventChannels(dom0);
    const port = await channels.allocUnbound(0);
    const errors: Error[] = [];
    channels.onError((err) => errors.push(err));
    const it = channels.events();
    const waiting = it.next();
    await hv!.close();
    hv = null;
    await expect(waiting).rejects.toMatchObject({ code: EvtchnCode.CLOSED });
    expect(errors.map((e) => (e as { code?: string }).code)).toEqual([EvtchnCode.CLOSED]);
    expect(channels.closed).toBe(true);
    expect(() => channels.notify(port)).toThrow(
      expect.objectContaining({ code: EvtchnCode.CLOSED }),
    );
    await channels.close();
  });

  it('openEventChannels picks the simulated host from XENCONS_SIM and owns its connection', async () => {
    const channels = await openEventChannels({ env: { XENCONS_SIM: dir } });
    expect(channels.backend).toBe('sim');
    const port = await channels.allocUnbound(0);
    expect(channels.ports).toEqual(new Set([port]));
    await channels.close();
    await expect(
      openEventChannels({ env: { XENCONS_SIM: join(scratch.path, 'nothing') } }),
    ).rejects.toMatchObject({ code: EvtchnCode.UNAVAILABLE });
  });
});

it('a missing evtchn device is ERR_EVTCHN_UNAVAILABLE', async () => {
  const device = '/nonexistent/xen/evtchn';
  expect(() => openLinuxEventChannels({ device })).toThrow(
    expect.objectContaining({ code: EvtchnCode.UNAVAILABLE }),
  );
  await expect(openEventChannels({ backend: 'linux', device })).rejects.toMatchObject({
    code: EvtchnCode.UNAVAILABLE,
  });
});
