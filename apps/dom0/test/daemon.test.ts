import * as fs from 'node:fs';
import * as path from 'node:path';
import { nativeUnavailableReason } from '@xencons/native';
import { type SimHost, startSimHost } from '@xencons/sim';
import { bundleChildScript, makeTempDir, requirement } from '@xencons/test-utils';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { attachConsole, listConsoles } from '../src/daemon/client.js';
import { ConsoleDaemon, type DaemonEvent } from '../src/daemon/daemon.js';
import { type Dom0World, openDom0World } from '../src/world.js';

const scratch = makeTempDir('xencons-daemon-');
let guestMain: string;
afterAll(() => scratch.remove());

const needs = requirement('the native addon', nativeUnavailableReason());

async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  ms = 10_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

needs.describe('console daemon on the simulated host', () => {
  let host: SimHost;
  let world: Dom0World;
  let daemon: ConsoleDaemon;
  let socketPath: string;
  let logDir: string;
  const events: DaemonEvent[] = [];

  beforeAll(async () => {
    guestMain = await bundleChildScript(
      new URL('../../../packages/sim/src/guest-main.ts', import.meta.url),
      scratch.path,
    );
  });

  beforeEach(async () => {
    const dir = path.join(scratch.path, `host-${Math.random().toString(36).slice(2)}`);
    host = await startSimHost({ dir, guestMain });
    world = await openDom0World({ XENCONS_SIM: dir });
    socketPath = path.join(dir, 'xencons', 'daemon.sock');
    logDir = path.join(dir, 'logs');
    events.length = 0;
    daemon = new ConsoleDaemon({
      xs: world.xs,
      gnttab: world.gnttab,
      events: world.events,
      socketPath,
      logDir,
    });
    daemon.on('event', (event) => events.push(event));
    await daemon.start();
  });

  afterEach(async () => {
    await daemon.close();
    await world.close();
    await host.close();
  });

  it('serves a guest console to viewers, logs it and replays it', async () => {
    await host.createDomain({ name: 'echo', cmd: 'cat' });
    await until(() => events.some((e) => e.type === 'console-up'), 'the console');
    const a = await attachConsole(socketPath, {
      domain: 'echo',
      num: 0,
      mode: 'rw',
      replay: 0,
      takeOver: false,
      label: 'a',
    });
    expect(a.writer).toBe(true);
    let seen = '';
    a.socket.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
    });
    a.socket.resume();
    a.socket.write('hello through the daemon\n');
    await until(() => seen.includes('hello through the daemon\n'), 'the echo');
    const b = await attachConsole(socketPath, {
      domain: '1',
      num: 0,
      mode: 'rw',
      replay: 100,
      takeOver: false,
      label: 'b',
    });
    expect(b.writer).toBe(false);
    expect(b.first.toString().startsWith('hello through the daemon\n')).toBe(true);
    const [listed] = await listConsoles(socketPath);
    expect(listed).toMatchObject({
      domid: 1,
      name: 'echo',
      num: 0,
      state: 'connected',
      viewers: 2,
      writer: 'a',
    });
    await until(
      () =>
        fs.existsSync(path.join(logDir, 'guest-echo.log')) &&
        fs.readFileSync(path.join(logDir, 'guest-echo.log'), 'utf8').includes('hello'),
      'the log',
    );
    a.socket.destroy();
    b.socket.destroy();
  });

  it('closes viewers when the domain goes away and serves the next one of that name', async () => {
    await host.createDomain({ name: 'phoenix', cmd: 'cat' });
    await until(() => events.some((e) => e.type === 'console-up'), 'the console');
    const a = await attachConsole(socketPath, {
      domain: 'phoenix',
      num: 0,
      mode: 'ro',
      replay: 0,
      takeOver: false,
      label: 'a',
    });
    let text = '';
    a.socket.on('data', (chunk: Buffer) => {
      text += chunk.toString();
    });
    const closed = new Promise((resolve) => a.socket.once('close', resolve));
    a.socket.resume();
    await host.destroyDomain('phoenix');
    await closed;
    expect(text).toContain('the domain went away');
    const again = await host.createDomain({ name: 'phoenix', cmd: 'cat' });
    await until(
      async () =>
        (await listConsoles(socketPath)).some(
          (c) => c.domid === again.domid && c.state === 'connected',
        ),
      'the new console',
    );
    expect(await listConsoles(socketPath)).toHaveLength(1);
  });

  it('logs every line of a guest writing as fast as it can, in order (keep policy)', async () => {
    const lines = 50_000;
    await host.createDomain({ name: 'flood', cmd: `seq 1 ${lines}; sleep 30` });
    const log = path.join(logDir, 'guest-flood.log');
    await until(
      () => fs.existsSync(log) && fs.readFileSync(log, 'utf8').endsWith(`\n${lines}\n`),
      `the whole log (have ${fs.existsSync(log) ? fs.statSync(log).size : 0} bytes; events ${JSON.stringify(events.slice(-3))})`,
      60_000,
    );
    const got = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean);
    expect(got.length).toBe(lines);
    expect(got.every((line, i) => line === String(i + 1))).toBe(true);
  }, 90_000);
});
