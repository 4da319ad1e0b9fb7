import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { probeConsole } from './console-nodes.js';
import { openPrimaryConsoleBackend } from './primary-backend.js';
import { patternBytes } from './test/pattern.js';
import { openSimFixture, removeGuestScript, type SimFixture, TextTap } from './test/sim-support.js';

let fx: SimFixture;
beforeEach(async () => {
  fx = await openSimFixture();
});
afterEach(async () => {
  await fx.close();
});
afterAll(removeGuestScript);

const MiB = 1 << 20;

describe('primary console backend on the simulated host (guests are separate processes)', () => {
  it('carries MiBs both ways at once with backpressure, checksummed at both ends', async () => {
    const send = 3 * MiB; // guest -> dom0, through the 2048-byte out ring
    const recv = 1 * MiB; // dom0 -> guest, through the 1024-byte in ring
    const g = await fx.guest('stream', 'primary-stream', {
      SEND: String(send),
      RECV: String(recv),
      SEED_OUT: '11',
      SEED_IN: '22',
    });
    const con = await openPrimaryConsoleBackend({ ...fx.deps, domid: g.domid });
    expect(con.info).toMatchObject({
      domid: g.domid,
      devid: 0,
      frontendPath: `/local/domain/${g.domid}/console`,
      ttyPath: `/local/domain/${g.domid}/console/tty`,
      ringRef: g.consoleFrame,
      remotePort: g.consolePort,
      type: 'xenconsoled',
      limit: 1048576,
      via: 'grant',
    });

    // dom0 reads, pausing now and then: the guest must wait, never drop.
    const received: Buffer[] = [];
    let total = 0;
    let paused = 0;
    const done = new Promise<void>((resolve, reject) => {
      con.stream.on('error', reject);
      con.stream.on('data', (chunk: Buffer) => {
        received.push(chunk);
        total += chunk.length;
        if (total > send && Buffer.concat(received).subarray(send).includes('\n', 1)) resolve();
        if (paused < 4 && total > (paused + 1) * 600_000) {
          paused++;
          con.stream.pause();
          setTimeout(() => con.stream.resume(), 50);
        }
      });
    });
    // dom0 writes its MiB with the stream's own backpressure (write() false -> wait for drain).
    const input = patternBytes(22, 0, recv);
    for (let at = 0; at < recv; at += 4096) {
      if (!con.stream.write(input.subarray(at, at + 4096))) await once(con.stream, 'drain');
    }
    await done;
    const all = Buffer.concat(received);
    const output = all.subarray(0, send);
    expect(createHash('sha256').update(output).digest('hex')).toBe(
      createHash('sha256')
        .update(patternBytes(11, 0, send))
        .digest('hex'),
    );
    const inputHash = createHash('sha256').update(input).digest('hex');
    expect(all.subarray(send).toString()).toBe(`\nDONE in=ok ${inputHash}\n`);
    expect(paused).toBe(4);
    expect(con.stream.stats()).toMatchObject({ bytesIn: all.length, bytesOut: recv });
    await con.close();
  });

  it('close() ends the stream after the last bytes, releases the port and the page, and is idempotent', async () => {
    const g = await fx.guest('quiet', 'echo');
    const con = await openPrimaryConsoleBackend({ ...fx.deps, domid: g.domid });
    const tap = new TextTap(con.stream);
    await tap.line(/^echo guest quiet \(domain \d+\)$/);
    expect(con.evtchn.ports.has(con.info.localPort)).toBe(true);
    const ended = once(con.stream, 'end');
    await con.close();
    await ended;
    expect(con.state).toBe('closed');
    expect(con.evtchn.ports.has(con.info.localPort)).toBe(false);
    await con.close();
    // The guest's port is unbound again: a new backend binds it afresh.
    const again = await openPrimaryConsoleBackend({ ...fx.deps, domid: g.domid });
    again.stream.resume();
    expect(again.state).toBe('connected');
    await again.close();
  });

  it('serves only the configured types: xenconsoled and xencons by default, a missing type too', async () => {
    const g = await fx.guest('typed', 'echo');
    const typePath = `/local/domain/${g.domid}/console/type`;
    const open = (types?: string[]) =>
      openPrimaryConsoleBackend({ ...fx.deps, domid: g.domid, ...(types ? { types } : {}) });

    await fx.host.xs.write(typePath, 'ioemu');
    expect(await probeConsole(fx.host.xs, g.domid, 0)).toMatchObject({
      status: 'foreign',
      type: 'ioemu',
    });
    await expect(open()).rejects.toMatchObject({
      code: 'ERR_CONSOLE_FOREIGN_TYPE',
      details: { type: 'ioemu' },
    });
    // Nothing was mapped or bound for the refused console.
    expect(fx.evtchn.ports.size).toBe(0);

    const qemuLike = await open(['ioemu']);
    expect(qemuLike.info.type).toBe('ioemu');
    await qemuLike.close();

    await fx.host.xs.write(typePath, 'xencons');
    const ours = await open();
    await ours.close();

    await fx.host.xs.rm(typePath);
    expect((await probeConsole(fx.host.xs, g.domid, 0)).status).toBe('ready');
    const untyped = await open();
    expect(untyped.info.type).toBeUndefined();
    const tap = new TextTap(untyped.stream);
    untyped.stream.write('typed into an untyped console\n');
    await tap.line(/^typed into an untyped console$/);
    await untyped.close();
  });

  it('reads limit as the toolstack wrote it: decimal, hex, absent, zero, garbage', async () => {
    const g = await fx.guest('limits', 'echo');
    const limitPath = `/local/domain/${g.domid}/console/limit`;
    const limitFor = async (value: string | null) => {
      if (value === null) await fx.host.xs.rm(limitPath);
      else await fx.host.xs.write(limitPath, value);
      const con = await openPrimaryConsoleBackend({ ...fx.deps, domid: g.domid });
      await con.close();
      return [con.info.limit, con.info.limitNode];
    };
    expect(await limitFor('4096')).toEqual([4096, '4096']);
    expect(await limitFor('0x10000')).toEqual([65536, '0x10000']);
    expect(await limitFor('0')).toEqual([null, '0']);
    expect(await limitFor('lots')).toEqual([null, 'lots']);
    expect(await limitFor(null)).toEqual([null, undefined]);
  });

  it('refuses consoles that are not there or not ready, with typed errors', async () => {
    await expect(openPrimaryConsoleBackend({ ...fx.deps, domid: 42 })).rejects.toMatchObject({
      code: 'ERR_CONSOLE_NOT_READY',
    });
    const g = await fx.guest('unready', 'echo');
    const dir = `/local/domain/${g.domid}/console`;
    await fx.host.xs.rm(`${dir}/port`);
    expect((await probeConsole(fx.host.xs, g.domid, 0)).status).toBe('not-ready');
    await expect(openPrimaryConsoleBackend({ ...fx.deps, domid: g.domid })).rejects.toMatchObject({
      code: 'ERR_CONSOLE_NOT_READY',
    });
    await fx.host.xs.write(`${dir}/port`, 'seven');
    await expect(openPrimaryConsoleBackend({ ...fx.deps, domid: g.domid })).rejects.toMatchObject({
      code: 'ERR_CONSOLE_BAD_NODE',
      details: { node: 'port' },
    });
    // A port that is not the guest's console port: the bind fails, nothing stays mapped.
    await fx.host.xs.write(`${dir}/port`, '77');
    await expect(openPrimaryConsoleBackend({ ...fx.deps, domid: g.domid })).rejects.toMatchObject({
      code: 'ERR_CONSOLE_CONNECT',
      details: { causeCode: 'ERR_EVTCHN_BAD_PORT' },
    });
  });
});
