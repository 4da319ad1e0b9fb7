// As root (CI runs as root): a temporary local user with a password, logged in through login(1),
// through our own PAM conversation and through the users file; the user is removed afterwards,
// even when a test fails.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { loadNative, nativeUnavailableReason } from '@xencons/native';
import { commandExists, isRoot, makeTempDir, requirement } from '@xencons/test-utils';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { memoryAudit } from '../src/audit.js';
import { LoginShell, type LoginShellOptions } from '../src/login-shell.js';
import {
  FakeTerminal,
  hasLines,
  plain,
  recordingSleep,
  testIssueContext,
} from '../src/test-support.js';
import { addUser } from '../src/users-file.js';

function missing(): string | null {
  if (!isRoot()) return 'not running as root';
  for (const c of ['useradd', 'chpasswd', 'userdel', 'chage']) {
    if (!commandExists(c)) return `${c} is not installed (passwd package)`;
  }
  if (!commandExists('login')) return 'login(1) is not installed (login package)';
  const n = loadNative();
  if (!n) return `native core: ${nativeUnavailableReason()}`;
  return n.pamUnavailableReason();
}

const root = requirement(
  'root, useradd/chpasswd/chage, login(1), libpam and the native core',
  missing(),
);

root.describe('logins as a temporary local user (root)', () => {
  const name = `xcl${randomBytes(3).toString('hex')}`;
  const password = `Pw-${randomBytes(6).toString('base64url')}-9`;
  const wrong = `Bad-${randomBytes(6).toString('base64url')}-1`;
  const running: { shell: LoginShell; term: FakeTerminal; done: Promise<void> }[] = [];

  const run = (cmd: string, args: string[], input?: string) => {
    const r = spawnSync(cmd, args, { input, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  };

  beforeAll(() => {
    run('useradd', ['-m', '-s', '/bin/bash', name]);
    run('chpasswd', [], `${name}:${password}\n`);
  });

  afterAll(async () => {
    for (const { shell, term, done } of running.splice(0)) {
      term.hangUp();
      await shell.stop();
      await done;
    }
    // -f: even if a process of the user is still around.
    spawnSync('userdel', ['-f', '-r', name], { stdio: 'ignore' });
  });

  function start(options: Partial<LoginShellOptions>) {
    const term = new FakeTerminal();
    const audit = memoryAudit();
    const slept = recordingSleep();
    const shell = new LoginShell(term.console, {
      console: 'roottest',
      probeSize: false,
      audit,
      sleep: slept.sleep,
      issueContext: testIssueContext,
      ...options,
    });
    const done = shell.run();
    running.push({ shell, term, done });
    return { term, shell, audit, slept };
  }

  it('login backend: login(1) refuses a wrong password after a delay, then logs in; the prompt returns after exit', async () => {
    const { term, audit } = start({ backend: 'login' });
    let at = await term.waitFor('testhost login: ');
    term.type(`${name}\r`);
    at = await term.waitFor('Password: ', at);
    const t0 = Date.now();
    term.type(`${wrong}\r`);
    at = await term.waitFor('Login incorrect', at);
    // login(1) (pam_faildelay: 3 s on Debian) waits before it answers; only the lower bound matters.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    // login(1) asks again itself.
    at = await term.waitFor(/login: $/, at);
    term.type(`${name}\r`);
    at = await term.waitFor('Password: ', at);
    term.type(`${password}\r`);
    // login(1) discards input typed before the shell runs (as on any console): wait for the prompt.
    at = await term.waitFor(/\$ $/, at);
    term.type('id -un; echo L-$((4+4))\r');
    at = await term.waitFor('L-8\r\n', at);
    expect(hasLines(term.transcript.slice(0, at), name, 'L-8')).toBe(true);
    term.type('exit\r');
    await term.waitFor('testhost login: ', at);
    expect(term.transcript).not.toContain(password);
    expect(term.transcript).not.toContain(wrong);
    expect(JSON.stringify(audit.records)).not.toMatch(new RegExp(`${password}|${wrong}`));
    expect(audit.records.map((r) => [r.user, r.outcome])).toEqual([
      [name, 'delegated'],
      [name, 'logout'],
    ]);
  });

  it('pam backend: refuses a wrong password with PAM’s delay, opens a session as the user, prompts again after exit', async () => {
    const { term, audit, slept } = start({ backend: 'pam', throttle: { baseDelayMs: 10 } });
    let at = await term.waitFor('testhost login: ');
    term.type(`${name}\r`);
    at = await term.waitFor('Password: ', at);
    term.type(`${wrong}\r`);
    at = await term.waitFor('Login incorrect', at);
    // PAM asked for its failure delay (pam_unix 2 s, pam_faildelay 3 s) and we waited that long.
    // Linux-PAM randomizes the delay it hands over around the longest request (pam_fail_delay(3):
    // by up to 25 % in older manuals, 50 % in newer ones; 1875 ms was seen for pam_unix's 2 s),
    // so the bound is half of 2 s: still far above our own 10 ms base delay.
    expect(slept.calls).toHaveLength(1);
    expect(slept.calls[0]).toBeGreaterThanOrEqual(1000);
    at = await term.waitFor('testhost login: ', at);
    term.type(`${name}\r`);
    at = await term.waitFor('Password: ', at);
    term.type(`${password}\r`);
    term.type('id -un; echo "$HOME $USER $LOGNAME $SHELL $TERM"; echo P-$((5+5))\r');
    at = await term.waitFor('P-10\r\n', at);
    expect(
      hasLines(
        term.transcript.slice(0, at),
        name,
        `/home/${name} ${name} ${name} /bin/bash vt220`,
        'P-10',
      ),
    ).toBe(true);
    term.type('seq 1 5000; exit\r');
    at = await term.waitFor('testhost login: ', at);
    expect(plain(term.transcript.slice(0, at))).toMatch(/\r\n4999\r\n5000\r\n/);
    expect(term.transcript).not.toContain(password);
    expect(term.transcript).not.toContain(wrong);
    expect(JSON.stringify(audit.records)).not.toMatch(new RegExp(`${password}|${wrong}`));
    expect(audit.records.map((r) => [r.user, r.outcome])).toEqual([
      [name, 'failure'],
      [name, 'success'],
      [name, 'logout'],
    ]);
    expect(audit.records[0]!.detail).toMatch(/^auth: Authentication failure/);
  });

  it('pam backend: an expired password is changed in a multi-prompt conversation before the session', async () => {
    run('chage', ['-d', '0', name]);
    const next = `Nw-${randomBytes(6).toString('base64url')}-7x`;
    try {
      const { term } = start({ backend: 'pam' });
      let at = await term.waitFor('testhost login: ');
      term.type(`${name}\r`);
      at = await term.waitFor('Password: ', at);
      term.type(`${password}\r`);
      at = await term.waitFor(/[Cc]urrent password: /, at);
      term.type(`${password}\r`);
      at = await term.waitFor(/New password: /, at);
      term.type(`${next}\r`);
      at = await term.waitFor(/Retype new password: /, at);
      term.type(`${next}\r`);
      term.type('id -un; echo C-$((3*3))\r');
      at = await term.waitFor('C-9\r\n', at);
      expect(hasLines(term.transcript.slice(0, at), name, 'C-9')).toBe(true);
      expect(term.transcript).not.toContain(next);
      expect(term.transcript).not.toContain(password);
      term.type('exit\r');
      await term.waitFor('testhost login: ', at);
    } finally {
      run('chpasswd', [], `${name}:${password}\n`);
    }
  });

  it('file backend as root: the shell runs as the local account of that name', async () => {
    const dir = makeTempDir('xencons-login-root-');
    try {
      const usersFile = join(dir.path, 'users');
      await addUser(usersFile, name, Buffer.from('file-only-pw'), { ln: 10, r: 8, p: 1 });
      const { term, audit } = start({ backend: 'file', usersFile });
      let at = await term.waitFor('testhost login: ');
      term.type(`${name}\rfile-only-pw\r`);
      term.type('id -un; id -u; echo F-$((2*8))\r');
      at = await term.waitFor('F-16\r\n', at);
      const uid = spawnSync('id', ['-u', name], { encoding: 'utf8' }).stdout.trim();
      expect(hasLines(term.transcript.slice(0, at), name, uid, 'F-16')).toBe(true);
      term.type('exit\r');
      await term.waitFor('testhost login: ', at);
      expect(audit.records.map((r) => r.outcome)).toEqual(['success', 'logout']);
    } finally {
      dir.remove();
    }
  });
});
