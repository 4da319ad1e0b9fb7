import { spawn } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSecondaryConsole, openGuestPrimaryConsole } from '@xencons/device';
import { nativeUnavailableReason, requireNative } from '@xencons/native';
import { type SimHost, startSimHost } from '@xencons/sim';
import {
  bundleChildScript,
  commandExists,
  makeTempDir,
  requirement,
  waitUntil,
} from '@xencons/test-utils';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { attachConsole, listConsoles } from '../src/daemon/client.js';
import { ConsoleDaemon, type DaemonEvent } from '../src/daemon/daemon.js';
import { type Dom0World, openDom0World } from '../src/world.js';

const scratch = makeTempDir('xencons-daemon-');
let guestMain: string;
let secondaryGuest = '';
const XENCONSOLE = '/usr/lib/xen-4.17/bin/xenconsole';
const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli.js');
afterAll(() => scratch.remove());

const needs = requirement('the native addon', nativeUnavailableReason());

const until = (check: () => boolean | Promise<boolean>, what: string, ms = 10_000) =>
  waitUntil(check, what, ms, 10);

/** Attaches to a console as the writer (label `a`, no replay) and keeps what it receives. */
async function attachWriter(socketPath: string, domain: string, num = 0) {
  const viewer = await attachConsole(socketPath, {
    domain,
    num,
    mode: 'rw',
    replay: 0,
    takeOver: false,
    label: 'a',
  });
  let seen = '';
  viewer.socket.on('data', (chunk: Buffer) => {
    seen += chunk.toString();
  });
  viewer.socket.resume();
  return { ...viewer, seen: () => seen };
}

/**
 * Runs Xen's xenconsole (under script(1), which gives it a terminal) against the simulated host:
 * types `input` after a second, then Ctrl-] (its escape) so it leaves by itself; its own process
 * group, killed on the way out whatever happens. Returns what it printed.
 */
async function runXenconsole(hostDir: string, args: string[], input: string): Promise<string> {
  const script = `(sleep 1; printf '${input}'; sleep 1; printf '\\035') | script -qec '${XENCONSOLE} ${args.join(' ')}' /dev/null`;
  const child = spawn('sh', ['-c', script], {
    env: { ...process.env, XENSTORED_PATH: path.join(hostDir, 'xenstored.sock') },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  const timer = setTimeout(() => process.kill(-(child.pid ?? 0), 'SIGKILL'), 10_000);
  try {
    await once(child, 'exit');
  } finally {
    clearTimeout(timer);
    try {
      process.kill(-(child.pid ?? 0), 'SIGKILL');
    } catch {
      // the group is gone
    }
  }
  return stdout;
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
    secondaryGuest = await bundleChildScript(
      new URL('./guests/secondary-echo.ts', import.meta.url),
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
    const a = await attachWriter(socketPath, 'echo');
    expect(a.writer).toBe(true);
    a.socket.write('hello through the daemon\n');
    await until(() => a.seen().includes('hello through the daemon\n'), 'the echo');
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

  it('moves a console to the new ring a soft reset publishes, keeping viewers, pty and log', async () => {
    const domain = await host.createDomain({ name: 'kexec', cmd: 'cat' });
    await until(() => events.some((e) => e.type === 'console-up'), 'the console');
    const tty = await host.xs.readString(`/local/domain/${domain.domid}/console/tty`);
    const a = await attachWriter(socketPath, 'kexec');
    a.socket.write('before the reset\n');
    await until(() => a.seen().includes('before the reset\n'), 'the echo from the first ring');

    const moved = await host.resetConsole('kexec');
    expect(moved.consolePort).not.toBe(domain.consolePort);
    await until(() => events.some((e) => e.type === 'console-moved'), 'the move');
    // The new kernel's end of the console: the new page and port from the start info.
    const guest = await openGuestPrimaryConsole({ env: host.guestEnvironment('kexec') });
    try {
      let typed = '';
      guest.stream.on('data', (chunk: Buffer) => {
        typed += chunk.toString();
      });
      guest.stream.write('after the reset\n');
      await until(() => a.seen().includes('after the reset\n'), 'output from the new ring');
      a.socket.write('typed after the reset\n');
      await until(() => typed.includes('typed after the reset\n'), 'input on the new ring');
      expect(a.socket.destroyed).toBe(false);
      expect(events.some((e) => e.type === 'console-down')).toBe(false);
      expect(await host.xs.readString(`/local/domain/${domain.domid}/console/tty`)).toBe(tty);
      const [listed] = await listConsoles(socketPath);
      expect(listed).toMatchObject({ name: 'kexec', num: 0, viewers: 1, writer: 'a' });
      await until(
        () =>
          fs
            .readFileSync(path.join(logDir, 'guest-kexec.log'), 'utf8')
            .includes('before the reset\nafter the reset\n'),
        'both rings in the log',
      );
    } finally {
      await guest.close();
      a.socket.destroy();
    }
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

  it('serves a secondary console the guest connects through xenbus', async () => {
    const g = await host.createDomain({ name: 'two', program: [process.execPath, secondaryGuest] });
    await createSecondaryConsole(host.xs, { domid: g.domid, devid: 1 });
    await until(
      () => events.some((e) => e.type === 'console-up' && e.num === 1),
      `console 1 (${JSON.stringify(events)} ${JSON.stringify(daemon.list())} ${JSON.stringify(host.list())} ${await host.xs.directory('/local/domain')}; guest log: ${fs.existsSync(g.logPath) ? fs.readFileSync(g.logPath, 'utf8') : ''})`,
      20_000,
    );
    const consoles = await listConsoles(socketPath);
    expect(consoles.map((c) => [c.num, c.state])).toEqual([
      [0, 'connected'],
      [1, 'connected'],
    ]);
    expect(consoles[1]?.tty).toMatch(/^\/dev\/pts\/\d+$/);
    expect(await host.xs.readString(`/local/domain/${g.domid}/device/console/1/tty`)).toBe(
      consoles[1]?.tty,
    );
    const a = await attachWriter(socketPath, 'two', 1);
    a.socket.write('ping');
    await until(() => a.seen().includes('hvc1:ping'), 'the echo on console 1');
    a.socket.destroy();
  });

  requirement(
    "Xen's xenconsole client and script(1)",
    !fs.existsSync(XENCONSOLE)
      ? 'install the Debian package xen-utils-4.17'
      : commandExists('script')
        ? null
        : 'install util-linux (script)',
  ).describe('with Xen tools', () => {
    it("lets Xen's own xenconsole attach through the pty it publishes in console/tty", async () => {
      const g = await host.createDomain({
        name: 'xc',
        cmd: 'echo banner; while read l; do echo "got:$l"; done',
      });
      await until(() => events.some((e) => e.type === 'console-up'), 'the console');
      const tty = await host.xs.readString(`/local/domain/${g.domid}/console/tty`);
      expect(tty).toMatch(/^\/dev\/pts\/\d+$/);
      const stdout = await runXenconsole(host.dir, ['--type', 'pv', String(g.domid)], 'hello\\n');
      expect(stdout).toContain('banner');
      expect(stdout).toContain('got:hello');
    });

    it('lets xenconsole --num 1 attach to a secondary console through device/console/1/tty', async () => {
      const g = await host.createDomain({
        name: 'xc1',
        program: [process.execPath, secondaryGuest],
      });
      await createSecondaryConsole(host.xs, { domid: g.domid, devid: 1 });
      await until(
        () => events.some((e) => e.type === 'console-up' && e.num === 1),
        'console 1',
        20_000,
      );
      const stdout = await runXenconsole(
        host.dir,
        ['--type', 'pv', '--num', '1', String(g.domid)],
        'ping',
      );
      expect(stdout).toContain('hvc1:ping');
      expect(stdout).not.toContain('secondary up'); // that went to console 0
    });
  });

  it('sits on the pty xenconsoled publishes when xenconsoled owns the ring (primary: pty)', async () => {
    await daemon.close();
    daemon = new ConsoleDaemon({
      xs: world.xs,
      gnttab: world.gnttab,
      events: world.events,
      socketPath,
      logDir,
      primary: 'pty',
    });
    daemon.on('event', (event) => events.push(event));
    await daemon.start();
    const g = await host.createDomain({ name: 'behind' });
    // Play xenconsoled: a pty of our own, its path in console/tty.
    const native = requireNative();
    const fake = native.ptyOpen(80, 25);
    native.fdSetBlocking(fake.master, false);
    try {
      await host.xs.write(`/local/domain/${g.domid}/console/tty`, fake.path);
      await until(
        () => events.some((e) => e.type === 'console-up' && e.domid === g.domid),
        'the console on the pty',
      );
      const a = await attachWriter(socketPath, 'behind');
      fs.writeSync(fake.master, 'from the guest via xenconsoled\n');
      await until(
        () => a.seen().includes('from the guest via xenconsoled'),
        'guest output through the pty',
      );
      a.socket.write('typed');
      let typed = '';
      await until(() => {
        try {
          const buffer = Buffer.alloc(100);
          const n = fs.readSync(fake.master, buffer, 0, 100, null);
          typed += buffer.subarray(0, n).toString();
        } catch {
          // EAGAIN
        }
        return typed.includes('typed');
      }, 'input through the pty');
      expect(fs.readFileSync(path.join(logDir, 'guest-behind.log'), 'utf8')).toContain(
        'from the guest via xenconsoled',
      );
      a.socket.destroy();
    } finally {
      fs.closeSync(fake.master);
      fs.closeSync(fake.slave);
    }
  });

  it('console --follow reattaches to the next domain of that name; log prints what the guest wrote', async () => {
    await host.createDomain({ name: 'again', cmd: 'cat' });
    await until(
      () => events.some((e) => e.type === 'console-up' && e.name === 'again'),
      'the console',
    );
    const child = spawn(
      process.execPath,
      [cli, 'console', 'again', '--follow', '--socket', socketPath],
      {
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    child.stderr.on('data', (chunk) => {
      err += chunk;
    });
    try {
      await until(() => err.includes('Escape character is ^]'), `the first attach (${err})`);
      child.stdin.write('first life\n');
      await until(() => out.includes('first life'), `the first echo (${err})`);
      await host.destroyDomain('again');
      await until(() => err.includes('waiting for it to come back'), `the client to wait (${err})`);
      await host.createDomain({ name: 'again', cmd: 'cat' });
      await until(
        () => (err.match(/Escape character/g) ?? []).length === 2,
        'the second attach',
        20_000,
      );
      child.stdin.write('second life\n');
      await until(() => out.includes('second life'), 'the second echo');
    } finally {
      child.stdin.write('\x1d');
      const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
      if (child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve));
      clearTimeout(killer);
    }
    expect(child.exitCode).toBe(0);
    const log = spawn(process.execPath, [cli, 'log', 'again', '--log-dir', logDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let logged = '';
    log.stdout.on('data', (chunk) => {
      logged += chunk;
    });
    await new Promise((resolve) => log.once('exit', resolve));
    expect(logged).toContain('first life');
    expect(logged).toContain('second life');
  });
});
