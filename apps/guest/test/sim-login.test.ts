// The agent in a guest of the simulated host, the console daemon in dom0, and a person at
// `xencons console` (and at Xen's own xenconsole): logins as a temporary local user, a wrong
// password, secondary consoles that come and go, the log console, debug keys. As root (CI): the
// user is made with useradd/chpasswd and removed afterwards, even when a test fails (or, when the
// test process died, by the next run).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSecondaryConsole, removeSecondaryConsole } from '@xencons/device';
import { loadNative, nativeUnavailableReason } from '@xencons/native';
import { type SimHost, startSimHost } from '@xencons/sim';
import {
  bundleChildScript,
  commandExists,
  isRoot,
  makeTempDir,
  requirement,
  waitUntil,
} from '@xencons/test-utils';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ConsoleDaemon, type DaemonEvent } from '../../dom0/src/daemon/daemon.js';
import { type Dom0World, openDom0World } from '../../dom0/src/world.js';
import { Driven } from './support/driver.js';
import { makeTestUser } from './support/users.js';

const XENCONSOLE = '/usr/lib/xen-4.17/bin/xenconsole';
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..', '..');

function missing(): string | null {
  if (!isRoot()) return 'not running as root';
  for (const c of ['useradd', 'chpasswd', 'userdel', 'login']) {
    if (!commandExists(c)) return `${c} is not installed`;
  }
  const n = loadNative();
  if (!n) return `native core: ${nativeUnavailableReason()}`;
  return n.pamUnavailableReason();
}

const needs = requirement(
  'root, useradd/chpasswd, login(1), libpam and the native core',
  missing(),
);

const until = (check: () => boolean | Promise<boolean>, what: string, ms = 20_000) =>
  waitUntil(check, what, ms, 20);

needs.describe('xencons-agent on the simulated host (root)', () => {
  const scratch = makeTempDir('xencons-agent-sim-');
  let user = '';
  let removeUser = () => {};
  const password = `Pw-${randomBytes(6).toString('base64url')}-7`;
  const wrong = `Bad-${randomBytes(6).toString('base64url')}-3`;
  let agentJs = '';
  let dom0Js = '';
  let host: SimHost;
  let world: Dom0World;
  let daemon: ConsoleDaemon;
  const events: DaemonEvent[] = [];
  const driven: Driven[] = [];

  const env = () => ({ ...process.env, XENCONS_SIM: host.dir, XENCONS_LOG: 'debug' });

  /** `xencons console NAME` with piped stdin (raw attach; works without a terminal). */
  const attach = (name: string, num = 0) => {
    const d = new Driven(process.execPath, [dom0Js, 'console', name, '--num', String(num)], env());
    driven.push(d);
    return d;
  };

  /** Everything dom0 and the guest wrote down: the daemon's logs and the guest processes' stderr. */
  const allLogs = () => {
    let text = '';
    const dirs = [path.join(host.dir, 'logs'), host.dir];
    for (const dir of dirs) {
      for (const f of fs.readdirSync(dir)) {
        const file = path.join(dir, f);
        if (f.endsWith('.log') && fs.statSync(file).isFile())
          text += fs.readFileSync(file, 'latin1');
      }
    }
    return text;
  };

  const startAgent = async (name: string, args: string[] = []) => {
    const g = await host.createDomain({
      name,
      program: [process.execPath, agentJs, 'run', ...args],
      env: { XENCONS_LOG: 'debug' },
    });
    // The log console: a channel named xencons-log, as a toolstack would add it.
    await createSecondaryConsole(host.xs, { domid: g.domid, devid: 1, name: 'xencons-log' });
    await until(
      () => events.some((e) => e.type === 'console-up' && e.domid === g.domid && e.num === 1),
      `the log console of ${name} (${JSON.stringify(events)}; agent log: ${fs.existsSync(g.logPath) ? fs.readFileSync(g.logPath, 'utf8') : ''})`,
    );
    return g;
  };

  /** Logs in at a login prompt that is showing; leaves the mark after the shell prompt. */
  const logIn = async (c: Driven) => {
    c.send(`${user}\r`);
    await c.expect('Password: ', 'the password prompt');
    c.send(`${password}\r`);
    await c.expect(/\$ $/m, 'the shell prompt');
  };

  beforeAll(async () => {
    // Both entries are called cli.ts: one folder each, or the second bundle replaces the first.
    for (const sub of ['agent', 'dom0']) fs.mkdirSync(path.join(scratch.path, sub));
    agentJs = await bundleChildScript(
      new URL('../src/cli.ts', import.meta.url),
      path.join(scratch.path, 'agent'),
    );
    dom0Js = await bundleChildScript(
      new URL('../../dom0/src/cli.ts', import.meta.url),
      path.join(scratch.path, 'dom0'),
    );
    const guestMain = await bundleChildScript(
      new URL('../../../packages/sim/src/guest-main.ts', import.meta.url),
      scratch.path,
    );
    const made = makeTestUser('xca', password);
    user = made.name;
    removeUser = made.remove;
    const dir = path.join(scratch.path, 'host');
    host = await startSimHost({ dir, guestMain });
    world = await openDom0World({ XENCONS_SIM: dir });
    daemon = new ConsoleDaemon({
      xs: world.xs,
      gnttab: world.gnttab,
      events: world.events,
      socketPath: path.join(dir, 'xencons', 'daemon.sock'),
      logDir: path.join(dir, 'logs'),
    });
    daemon.on('event', (e) => events.push(e));
    await daemon.start();
  }, 120_000);

  afterAll(async () => {
    for (const d of driven) d.close();
    await daemon?.close().catch(() => {});
    await world?.close().catch(() => {});
    await host?.close().catch(() => {});
    removeUser(); // userdel -f: even if a process of the user is still around
    scratch.remove();
  }, 60_000);

  it('xencons console: Enter, a wrong password refused after a delay, a login, id -un, exit, the prompt again', async () => {
    await startAgent('alpha');
    const c = attach('alpha');
    await c.expect('Escape character is ^]', 'the attach');
    c.send('\r');
    await c.expect(/login: $/m, 'the login prompt');
    c.send(`${user}\r`);
    await c.expect('Password: ', 'the password prompt');
    const sent = Date.now();
    c.send(`${wrong}\r`);
    await c.expect('Login incorrect', 'the refusal');
    // login(1) waits (pam_faildelay: 3 s on Debian) before it says so.
    expect(Date.now() - sent).toBeGreaterThanOrEqual(1000);
    await c.expect(/login: $/m, "login(1)'s own prompt again");
    await logIn(c);
    c.send('id -un\r');
    await c.expect(new RegExp(`[\\r\\n]${user}\\r\\n`), 'the name from id -un');
    c.send('exit\r');
    await c.expect(/logout/, 'the logout');
    await c.expect(/login: $/m, 'the login prompt after exit');
    expect(await c.finish()).toBe(0);
    const logs = allLogs();
    expect(logs).toContain(`console=hvc0 user=${user} backend=login outcome=delegated`);
    for (const secret of [password, wrong]) {
      expect(c.text.includes(secret), 'the transcript holds a password').toBe(false);
      expect(logs.includes(secret), 'a log holds a password').toBe(false);
    }
  }, 120_000);

  it('the log console carries the agent log to dom0 (guest-NAME-1.log)', async () => {
    const log = path.join(host.dir, 'logs', 'guest-alpha-1.log');
    await until(
      () =>
        fs.existsSync(log) &&
        fs.readFileSync(log, 'utf8').includes('INFO session ended console=hvc0'),
      'the session lines in the log console',
    );
    const text = fs.readFileSync(log, 'utf8');
    expect(text).toMatch(/INFO xencons-agent ready platform=sim consoles=hvc0:login/);
    expect(text).toMatch(
      new RegExp(`INFO session started console=hvc0 user=${user} pty=/dev/pts/\\d+`),
    );
    expect(text).toContain('INFO log console attached console=hvc1 channel=xencons-log');
  });

  it('debug keys: out of band (xencons debug NAME KEY) and in band (Ctrl-^ s), to the console and the log console', async () => {
    // Not spawnSync: the simulated host's xenstored runs in this very process.
    const run = (args: string[]) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          [dom0Js, 'debug', ...args],
          { env: env(), encoding: 'utf8', timeout: 30_000 },
          (error, stdout, stderr) =>
            resolve({ status: error ? ((error.code as number) ?? null) : 0, stdout, stderr }),
        );
      });
    const list = await run(['alpha']);
    expect(list.status, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/^s {2}sessions$/m);
    expect(list.stdout).toMatch(/^r {2}console rings$/m);
    const a = await run(['alpha', 'a']);
    expect(a.status, a.stderr).toBe(0);
    expect(a.stdout).toMatch(/^agent: xencons-agent \S+ pid \d+ on sim, up \d+ s$/m);
    expect(a.stdout).toMatch(/^agent: logins: .*delegated=\d/m);
    const r = await run(['alpha', 'r', '--json']);
    const rings = JSON.parse(r.stdout) as { lines: string[] };
    expect(rings.lines.join('\n')).toMatch(
      /console hvc0: login \(primary\): .*bytesIn=\d+ bytesOut=\d+ rxQueued=0 txQueued=\d+/,
    );
    expect(rings.lines.join('\n')).toMatch(/log console: hvc1: forwarded=\d+ dropped=0/);
    expect((await run(['nosuchguest', 's'])).status).toBe(1);

    const c = attach('alpha');
    await c.expect('Escape character is ^]', 'the attach');
    c.send('\x1es');
    await c.expect('XENCONS|DEBUG: <==== sessions', 'the in-band output');
    expect(c.text).toContain('sessions: hvc0 (primary): at the login prompt');
    await c.finish();
    const log = path.join(host.dir, 'logs', 'guest-alpha-1.log');
    await until(
      () =>
        (fs.readFileSync(log, 'utf8').match(/XENCONS\|DEBUG: ====> sessions/g) ?? []).length >= 1,
      'debug output in the log console',
    );
    expect(fs.readFileSync(log, 'utf8')).toContain(
      'INFO debug key key=s trigger=console console=hvc0',
    );
  }, 90_000);

  it('a secondary console removed mid-session hangs the session up; added again, it gets a login again', async () => {
    const g = host.list().find((d) => d.name === 'alpha');
    if (!g) throw new Error('no alpha');
    const domid = g.domid;
    const ups = () =>
      events.filter((e) => e.type === 'console-up' && e.domid === domid && e.num === 2).length;
    await createSecondaryConsole(host.xs, { domid, devid: 2 });
    await until(() => ups() === 1, 'console 2 served');
    const c = attach('alpha', 2);
    await c.expect('Escape character is ^]', 'the attach to console 2');
    c.send('\r');
    await c.expect(/login: $/m, 'the login prompt on console 2');
    await logIn(c);
    c.send('echo shell-pid=$$\r');
    const pid = Number((await c.expect(/shell-pid=(\d+)\r\n/, 'the shell pid')).match(/\d+/)?.[0]);
    expect(pid).toBeGreaterThan(1);
    await removeSecondaryConsole(host.xs, { domid, devid: 2 });
    await c.exited;
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    await until(() => !alive(), `the shell ${pid} to be hung up`);
    const log = path.join(host.dir, 'logs', 'guest-alpha-1.log');
    await until(
      () => fs.readFileSync(log, 'utf8').includes('console gone console=hvc2'),
      'the agent noticing',
    );

    await createSecondaryConsole(host.xs, { domid, devid: 2 });
    await until(() => ups() === 2, 'console 2 served again');
    const again = attach('alpha', 2);
    await again.expect('Escape character is ^]', 'the attach to the new console 2');
    again.send('\r');
    await again.expect(/login: $/m, 'the login prompt on the new console 2');
    await again.finish();
    expect(fs.readFileSync(log, 'utf8')).toMatch(
      /console up console=hvc2 kind=sim primary=false[\s\S]*console gone console=hvc2[\s\S]*console up console=hvc2/,
    );
  }, 120_000);

  requirement(
    "Xen's xenconsole client and script(1)",
    !fs.existsSync(XENCONSOLE)
      ? 'install the Debian package xen-utils-4.17'
      : commandExists('script')
        ? null
        : 'install util-linux (script)',
  ).describe('through Xen tools', () => {
    it("Xen's xenconsole: the same login through the pty the daemon publishes (pam backend)", async () => {
      const g = await startAgent('beta', [
        '--auth',
        'pam',
        '--pam-helper',
        path.join(repo, 'packages', 'login-shell', 'src', 'pam-helper.mjs'),
      ]);
      await until(
        async () =>
          /^\/dev\/pts\/\d+$/.test(
            (await host.xs.readStringOptional(`/local/domain/${g.domid}/console/tty`)) ?? '',
          ),
        'the console pty in console/tty',
      );
      // script(1) gives xenconsole the terminal it wants; we type into script's stdin.
      const c = new Driven('script', ['-qec', `${XENCONSOLE} --type pv ${g.domid}`, '/dev/null'], {
        ...process.env,
        XENSTORED_PATH: path.join(host.dir, 'xenstored.sock'),
      });
      driven.push(c);
      await new Promise((r) => setTimeout(r, 500)); // xenconsole opens the pty
      c.send('\r');
      await c.expect(/login: $/m, 'the login prompt through xenconsole');
      c.send(`${user}\r`);
      await c.expect('Password: ', 'the password prompt');
      const sent = Date.now();
      c.send(`${wrong}\r`);
      await c.expect('Login incorrect', 'the refusal');
      expect(Date.now() - sent).toBeGreaterThanOrEqual(1000);
      await c.expect(/login: $/m, 'the prompt after the refusal');
      await logIn(c);
      c.send('id -un\r');
      await c.expect(new RegExp(`[\\r\\n]${user}\\r\\n`), 'the name from id -un');
      c.send('exit\r');
      await c.expect(/login: $/m, 'the login prompt after exit');
      c.send('\x1d'); // xenconsole's escape: it exits by itself
      await Promise.race([c.exited, new Promise((r) => setTimeout(r, 5000))]);
      c.close();
      expect(allLogs()).toContain(`console=hvc0 user=${user} backend=pam outcome=success`);
      for (const secret of [password, wrong]) {
        expect(c.text.includes(secret), 'the transcript holds a password').toBe(false);
        expect(allLogs().includes(secret), 'a log holds a password').toBe(false);
      }
    }, 120_000);
  });
});
