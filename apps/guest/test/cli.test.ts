import { captureIo } from '@xencons/cli';
import { describe, expect, it } from 'vitest';
import { main } from '../src/index.js';

describe('xencons-agent main', () => {
  it('prints help with exit 0', async () => {
    const c = captureIo();
    expect(await main(['--help'], c.io)).toBe(0);
    expect(c.stdout()).toContain('Usage: xencons-agent <command>');
    expect(c.stdout()).toMatch(/run\s+a login on every console/);
  });

  it.each([
    ['run', 'Usage: xencons-agent run [options]'],
    ['debug', 'Usage: xencons-agent debug [KEY] [options]'],
    ['status', 'Usage: xencons-agent status'],
  ])('%s --help', async (command, usage) => {
    const c = captureIo();
    expect(await main([command, '--help'], c.io)).toBe(0);
    expect(c.stdout()).toContain(usage);
  });

  it.each([
    [['run', '--auth', 'kerberos'], '--auth must be login, pam, file or none'],
    [['run', '--auth', 'none'], 'add --allow-autologin'],
    [['run', '--hotkey', '^C'], 'Ctrl-C interrupts'],
    [['run', '--hotkey', 'x'], 'must be a control key'],
    [['run', '--platform', 'beos'], '--platform must be'],
    [['run', '--platform', 'sim', '--tty', '/dev/ttyS0'], '--tty serves Linux ttys'],
    [['run', '--login-timeout', 'soon'], '--login-timeout must be a number'],
    [['run', '--frobnicate'], "Unknown option '--frobnicate'"],
    [['debug', 'ab'], 'a KEY is one character'],
    [['status', 'extra'], 'status takes no arguments'],
  ])('usage error: %j', async (argv, message) => {
    const c = captureIo();
    expect(await main(argv, c.io)).toBe(2);
    expect(c.stderr()).toContain(message);
  });

  it('debug and status say when no agent answers', async () => {
    const c = captureIo({ XENCONS_AGENT_SOCKET: '/nonexistent/xencons-agent.sock' });
    expect(await main(['debug', 's'], c.io)).toBe(1);
    expect(await main(['status'], c.io)).toBe(1);
    expect(c.stderr()).toContain('is the agent running? socket /nonexistent/xencons-agent.sock');
  });

  it('run on the simulated host without guest credentials fails with a reason', async () => {
    const c = captureIo({ XENCONS_SIM: '/nonexistent', XENCONS_LOG: 'error' });
    expect(await main(['run', '--control', 'none'], c.io)).toBe(1);
    expect(c.stderr()).toContain('not a guest of the simulated host');
  });
});
