import { join } from 'node:path';
import { makeTempDir } from '@xencons/test-utils';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { currentAccount } from './accounts.js';
import { memoryAudit } from './audit.js';
import { LoginShell, type LoginShellOptions } from './login-shell.js';
import {
  FakeTerminal,
  hasLines,
  nativeCore,
  recordingSleep,
  testIssueContext,
} from './test-support.js';
import { addUser } from './users-file.js';

const FAST = { ln: 10, r: 8, p: 1 };
const PASSWORD = 'Pw-7q!zed';
const WRONG = 'Wr0ng-guess';

nativeCore.describe('LoginShell over a Duplex pair, file backend, a real shell', () => {
  let dir: { path: string; remove: () => void };
  let usersFile: string;
  let user: string;
  const running: { shell: LoginShell; term: FakeTerminal }[] = [];

  beforeEach(async () => {
    dir = makeTempDir('xencons-login-');
    usersFile = join(dir.path, 'users');
    user = currentAccount().name;
    await addUser(usersFile, user, Buffer.from(PASSWORD), FAST);
  });

  afterEach(async () => {
    for (const { shell, term } of running.splice(0)) {
      term.hangUp();
      await shell.stop();
    }
    dir.remove();
  });

  function start(extra: Partial<LoginShellOptions> = {}) {
    const term = new FakeTerminal();
    const audit = memoryAudit();
    const slept = recordingSleep();
    const shell = new LoginShell(term.console, {
      console: 'testcon',
      backend: 'file',
      usersFile,
      probeSize: false,
      audit,
      sleep: slept.sleep,
      issueContext: testIssueContext,
      throttle: { baseDelayMs: 1000, maxFailures: 3 },
      env: { PS1: 'xsh$ ', LC_ALL: 'C' },
      ...extra,
    });
    const done = shell.run();
    running.push({ shell, term });
    return { term, shell, audit, slept, done };
  }

  it('refuses a wrong password after a delay, logs in, runs id -un, and prompts again after exit', async () => {
    const { term, audit, slept, shell } = start();
    expect(shell.status().session).toBeNull();
    let at = await term.waitFor('testhost login: ');
    expect(term.transcript).toContain('Test OS (Linux 6.1.0 x86_64) testhost testcon\r\n');

    term.type(`${user}\r`);
    at = await term.waitFor('Password: ', at);
    term.type(`${WRONG}\r`);
    at = await term.waitFor('Login incorrect', at);
    expect(slept.calls).toEqual([1000]);
    at = await term.waitFor('testhost login: ', at);

    term.type(`${user}\r`);
    at = await term.waitFor('Password: ', at);
    term.type(`${PASSWORD}\r`);
    term.type('id -un; echo END-$((2+3))\r');
    at = await term.waitFor('END-5\r\n', at);
    expect(shell.status()).toMatchObject({
      console: 'testcon',
      backend: 'file',
      session: { user, pty: expect.stringMatching(/^\/dev\/pts\/\d+$/) },
    });
    expect(hasLines(term.transcript.slice(0, at), user, 'END-5')).toBe(true);

    // Everything the shell writes as it exits arrives before the next prompt.
    term.type('seq 1 20000; exit\r');
    at = await term.waitFor('testhost login: ', at);
    const session = term.transcript.slice(0, at);
    expect(session).toMatch(/\r\n19999\r\n20000\r\n/);
    expect(session.indexOf('20000\r\n')).toBeLessThan(session.lastIndexOf('testhost login: '));

    expect(shell.status().session).toBeNull();
    expect(term.transcript).not.toContain(PASSWORD);
    expect(term.transcript).not.toContain(WRONG);
    expect(JSON.stringify(audit.records)).not.toMatch(new RegExp(`${PASSWORD}|${WRONG}`));
    expect(audit.records.map((r) => [r.user, r.outcome])).toEqual([
      [user, 'failure'],
      [user, 'success'],
      [user, 'logout'],
    ]);
    expect(audit.records.every((r) => r.console === 'testcon' && r.backend === 'file')).toBe(true);
  });

  it('logs an unknown name as UNKNOWN, never what was typed', async () => {
    const { term, audit } = start();
    let at = await term.waitFor('login: ');
    term.type('hunter2-typed-as-name\r');
    at = await term.waitFor('Password: ', at);
    term.type('x\r');
    await term.waitFor('Login incorrect', at);
    expect(audit.records).toHaveLength(1);
    expect(audit.records[0]).toMatchObject({ user: 'UNKNOWN', outcome: 'failure' });
  });

  it('grows the delay with each failure and locks the console after maxFailures', async () => {
    const { term, audit, slept } = start();
    let at = 0;
    for (let i = 0; i < 3; i++) {
      at = await term.waitFor('login: ', at);
      term.type(`${user}\r`);
      at = await term.waitFor('Password: ', at);
      term.type(`${WRONG}${i}\r`);
      at = await term.waitFor('Login incorrect', at);
    }
    expect(slept.calls).toEqual([1000, 2000, 4000]);
    at = await term.waitFor('locked for 300 s', at);
    at = await term.waitFor('login: ', at);
    // Locked: even the right password is not asked for.
    term.type(`${user}\r`);
    at = await term.waitFor(/Too many failed logins on testcon; try again in \d+ s/, at);
    expect(term.transcript.slice(term.transcript.lastIndexOf('login: '), at)).not.toContain(
      'Password:',
    );
    expect(audit.records.map((r) => r.outcome)).toEqual([
      'failure',
      'failure',
      'failure',
      'locked',
    ]);
  });

  it('Ctrl-C and an empty line at the prompt start over; a prompt left alone times out', async () => {
    const { term } = start({ loginTimeoutMs: 300 });
    let at = await term.waitFor('login: ');
    term.type('abc\x03');
    at = await term.waitFor('^C\r\n', at);
    at = await term.waitFor('login: ', at);
    term.type('\r');
    at = await term.waitFor('login: ', at);
    at = await term.waitFor('Login timed out after 0 seconds.', at);
    await term.waitFor('login: ', at);
  });

  it('handles CRLF line ends and typeahead: name and password in one write', async () => {
    const { term } = start();
    const at = await term.waitFor('login: ');
    term.type(`${user}\r\n${PASSWORD}\r\necho TA-$((6*7))\r\n`);
    await term.waitFor('TA-42\r\n', at);
    expect(term.transcript).not.toContain(PASSWORD);
  });

  it('asks the terminal for its size and gives the shell that size; re-asks on demand', async () => {
    const { term, shell } = start({ probeSize: true });
    term.answerSize = { cols: 132, rows: 40 };
    let at = await term.waitFor('login: ');
    term.type(`${user}\r`);
    at = await term.waitFor('Password: ', at);
    expect(term.transcript).toContain('\x1b[18t');
    term.type(`${PASSWORD}\r`);
    term.type('stty size; echo S-$((1+0))\r');
    at = await term.waitFor('S-1\r\n', at);
    expect(hasLines(term.transcript.slice(0, at), '40 132', 'S-1')).toBe(true);
    expect(shell.size).toEqual({ cols: 132, rows: 40 });

    term.answerSize = { cols: 100, rows: 50 };
    expect(await shell.querySize()).toEqual({ cols: 100, rows: 50 });
    term.type('stty size; echo S-$((1+1))\r');
    at = await term.waitFor('S-2\r\n', at);
    // The answer went to us, not to the shell as typed input.
    expect(hasLines(term.transcript.slice(0, at), '50 100', 'S-2')).toBe(true);
    expect(term.transcript).not.toMatch(/\^\[\[50;100R/);
  });

  it('keeps the default size when the terminal does not answer', async () => {
    const { term, shell } = start({ probeSize: true, sizeProbeTimeoutMs: 50 });
    let at = await term.waitFor('login: ');
    term.type(`${user}\r`);
    at = await term.waitFor('Password: ', at);
    term.type(`${PASSWORD}\rstty size; echo S-$((3))\r`);
    at = await term.waitFor('S-3\r\n', at);
    expect(hasLines(term.transcript.slice(0, at), '24 80', 'S-3')).toBe(true);
    expect(shell.size).toEqual({ cols: 80, rows: 24 });
  });

  it('ends an idle session and prompts again', async () => {
    const { term, audit } = start({ idleTimeoutMs: 400 });
    let at = await term.waitFor('login: ');
    term.type(`${user}\r${PASSWORD}\r`);
    at = await term.waitFor('Idle timeout: logging out.', at);
    await term.waitFor('login: ', at);
    expect(audit.records.map((r) => r.outcome)).toEqual(['success', 'logout']);
  });

  it('hangs up the shell when the console goes away, and run() ends', async () => {
    const { term, done } = start();
    let at = await term.waitFor('login: ');
    term.type(`${user}\r${PASSWORD}\r`);
    term.type('echo PID=$$\r');
    at = await term.waitFor(/PID=\d+\r\n/, at);
    const pid = Number(/PID=(\d+)\r\n/.exec(term.transcript)![1]);
    term.hangUp();
    await done;
    expect(() => process.kill(pid, 0)).toThrow();
  });
});

nativeCore.describe('LoginShell configuration', () => {
  it('refuses the none backend without allowAutologin', () => {
    const term = new FakeTerminal();
    expect(() => new LoginShell(term.console, { console: 'c', backend: 'none' })).toThrow(
      expect.objectContaining({ code: 'ERR_LOGIN_CONFIG' }),
    );
    expect(() => new LoginShell(term.console, { console: 'c', backend: 'file' })).toThrow(
      /usersFile/,
    );
  });

  it('autologin (none) warns, audits and runs a shell as the current user', async () => {
    const term = new FakeTerminal();
    const audit = memoryAudit();
    const shell = new LoginShell(term.console, {
      console: 'auto0',
      backend: 'none',
      allowAutologin: true,
      probeSize: false,
      audit,
      issueContext: testIssueContext,
    });
    const done = shell.run();
    try {
      let at = await term.waitFor('press Enter ');
      term.type('\r');
      at = await term.waitFor('without a password', at);
      term.type('id -un; echo A-$((1+1))\r');
      await term.waitFor('A-2\r\n', at);
      expect(hasLines(term.transcript, currentAccount().name, 'A-2')).toBe(true);
      expect(audit.records[0]).toMatchObject({
        outcome: 'autologin',
        backend: 'none',
        console: 'auto0',
      });
    } finally {
      term.hangUp();
      await shell.stop();
      await done;
    }
  });
});

describe('LoginShell (no native needed)', () => {
  it('refuses an unknown backend', () => {
    const term = new FakeTerminal();
    expect(
      () =>
        new LoginShell(term.console, { console: 'c', backend: 'nope' as never, usersFile: 'x' }),
    ).toThrow(/unknown backend/);
  });
});
