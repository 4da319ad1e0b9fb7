// The agent as an ordinary user with the users-file backend, on a tty given with --tty (a pty
// here, whose master plays dom0): the banner, a wrong password refused after the throttle's
// delay, a login, `id -un` names the agent's own user, exit, the prompt again. Root is needed
// only to make that user and to start the agent as it (setpriv).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, closeSync, readSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { addUser } from '@xencons/login-shell';
import { loadNative, nativeUnavailableReason } from '@xencons/native';
import {
  bundleChildScript,
  commandExists,
  isRoot,
  makeTempDir,
  requirement,
} from '@xencons/test-utils';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makeTestUser } from './support/users.js';

function missing(): string | null {
  if (!isRoot()) return 'not running as root (needed to make a user and start the agent as it)';
  for (const c of ['useradd', 'userdel', 'setpriv']) {
    if (!commandExists(c)) return `${c} is not installed`;
  }
  return loadNative() ? null : `native core: ${nativeUnavailableReason()}`;
}

requirement(
  'root, useradd, setpriv and the native core',
  missing(),
).describe('xencons-agent unprivileged with --auth file', () => {
  const scratch = makeTempDir('xencons-agent-unpriv-');
  const password = `Pw-${randomBytes(6).toString('base64url')}-5`;
  const wrong = `Bad-${randomBytes(6).toString('base64url')}-2`;
  let account: ReturnType<typeof makeTestUser> | null = null;
  let agentJs = '';
  let usersFile = '';

  beforeAll(async () => {
    chmodSync(scratch.path, 0o755);
    agentJs = await bundleChildScript(new URL('../src/cli.ts', import.meta.url), scratch.path);
    account = makeTestUser('xcu');
    usersFile = path.join(scratch.path, 'login-users');
    // A name of the users file, not a local account: without root the shell is the agent's user.
    await addUser(usersFile, 'console-alice', Buffer.from(password));
    chownSync(usersFile, account.uid, account.gid);
  }, 60_000);

  afterAll(() => {
    account?.remove();
    scratch.remove();
  });

  it('logs in on a tty as the users-file name and runs the shell as the agent user', async () => {
    if (!account) throw new Error('no user');
    const n = loadNative();
    if (!n) throw new Error('no native core');
    const pty = n.ptyOpen(80, 24);
    n.fdSetBlocking(pty.master, false);
    chownSync(pty.path, account.uid, account.gid);
    closeSync(pty.slave);
    const agent = spawn(
      'setpriv',
      [
        `--reuid=${account.uid}`,
        `--regid=${account.gid}`,
        '--init-groups',
        '--',
        process.execPath,
        agentJs,
        'run',
        '--platform',
        'linux',
        '--tty',
        pty.path,
        '--auth',
        'file',
        '--users-file',
        usersFile,
        '--control',
        'none',
        '--no-size-probe',
        '--issue',
        'unprivileged test \\l\n',
      ],
      {
        cwd: '/',
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: `/home/${account.name}` },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let agentLog = '';
    agent.stderr.on('data', (d: Buffer) => {
      agentLog += d.toString();
    });
    let seen = '';
    let from = 0;
    const read = () => {
      const buf = Buffer.alloc(65536);
      for (;;) {
        try {
          const got = readSync(pty.master, buf, 0, buf.length, null);
          if (got <= 0) return;
          seen += buf.subarray(0, got).toString('latin1');
        } catch {
          return;
        }
      }
    };
    const expectText = async (pattern: RegExp | string, what: string) => {
      const deadline = Date.now() + 20_000;
      for (;;) {
        read();
        const rest = seen.slice(from);
        const i = typeof pattern === 'string' ? rest.indexOf(pattern) : rest.search(pattern);
        if (i >= 0) {
          from += i + 1;
          return;
        }
        if (Date.now() > deadline || agent.exitCode !== null)
          throw new Error(
            `waiting for ${what}: ${JSON.stringify(rest.slice(-300))}; agent: ${agentLog}`,
          );
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const type = (text: string) => {
      from = seen.length;
      writeSync(pty.master, text);
    };
    try {
      await expectText(/unprivileged test pts\/\d+/, 'the banner');
      await expectText('login: ', 'the prompt');
      type('console-alice\r');
      await expectText('Password: ', 'the password prompt');
      const sent = Date.now();
      type(`${wrong}\r`);
      await expectText('Login incorrect', 'the refusal');
      expect(Date.now() - sent).toBeGreaterThanOrEqual(1500); // the throttle's first delay is 2 s
      await expectText('login: ', 'the prompt again');
      type('console-alice\r');
      await expectText('Password: ', 'the password prompt');
      type(`${password}\r`);
      await expectText(/\$ $/m, 'the shell prompt');
      type('id -un\r');
      await expectText(new RegExp(`[\\r\\n]${account.name}\\r\\n`), 'the agent user from id -un');
      type('exit\r');
      await expectText('login: ', 'the prompt after exit');
      expect(seen.includes(password) || seen.includes(wrong)).toBe(false);
      expect(agentLog.includes(password) || agentLog.includes(wrong)).toBe(false);
      expect(agentLog).toMatch(/"outcome":"failure"/);
      expect(agentLog).toMatch(/"outcome":"success"/);
    } finally {
      agent.kill('SIGTERM');
      const timer = setTimeout(() => agent.kill('SIGKILL'), 5000);
      await new Promise((r) => (agent.exitCode === null ? agent.once('exit', r) : r(null)));
      clearTimeout(timer);
      closeSync(pty.master);
    }
    expect(agent.exitCode).toBe(0);
  }, 60_000);
});
