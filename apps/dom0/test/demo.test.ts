import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeUnavailableReason } from '@xencons/native';
import { commandExists, requirement } from '@xencons/test-utils';
import { expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const cli = join(here, '..', 'dist', 'cli.js');

const needs = requirement(
  'the native addon and a built xencons (dist/cli.js)',
  nativeUnavailableReason() ?? (existsSync(cli) ? null : `${cli} is missing: run pnpm build`),
);

needs.describe('xencons demo', () => {
  it('runs a shell in a guest process through the console rings and tears it down', async () => {
    const child = spawn(process.execPath, [cli, 'demo'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    try {
      child.stdin.write('echo ring-$((40+2))\n');
      // Enough output to wrap the 2048-byte `out` ring many times.
      child.stdin.write(
        'i=0; while [ $i -lt 400 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done; echo done-$i\n',
      );
      child.stdin.write('exit\n');
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      expect(err).toContain('Escape character is ^]');
      expect(out).toContain('ring-42');
      expect(out).toContain('line-399-');
      expect(out).toContain('done-400');
      expect(code, err).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});

requirement(
  'script(1) for a terminal',
  commandExists('script') ? null : 'install util-linux',
).describe('xencons demo in a terminal', () => {
  it('attaches in raw mode, shows the detach key, and Ctrl-] tears everything down', async () => {
    // script gives the demo a real terminal; Ctrl-] is sent once the shell answered.
    const child = spawn(
      'sh',
      [
        '-c',
        `(sleep 3; printf 'echo hi-$((1+1))\\r'; sleep 2; printf '\\035'; sleep 1) | script -qec '${process.execPath} ${cli} demo; echo DEMO-EXIT=$?' /dev/null`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    const timer = setTimeout(() => process.kill(-(child.pid ?? 0), 'SIGKILL'), 30_000);
    await new Promise((resolve) => child.on('exit', resolve));
    clearTimeout(timer);
    const text = out.replaceAll('\r', '');
    expect(text).toContain('Escape character is ^]');
    expect(text).toContain('hi-2');
    expect(text).toContain('Simulated host stopped.');
    expect(text).toContain('DEMO-EXIT=0');
  }, 40_000);
});

const agent = join(here, '..', '..', 'guest', 'dist', 'cli.js');

requirement(
  'script(1) and a built xencons-agent',
  !commandExists('script')
    ? 'install util-linux'
    : existsSync(agent)
      ? null
      : `${agent} is missing: run pnpm build`,
).describe('xencons demo with the agent', () => {
  it('offers a login on the guest console; the shell runs as the current user; Ctrl-] ends it', async () => {
    const child = spawn('script', ['-qec', `${process.execPath} ${cli} demo`, '/dev/null'], {
      env: { ...process.env, XENCONS_AGENT: agent },
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    const wait = async (pattern: RegExp, ms = 30_000) => {
      const deadline = Date.now() + ms;
      while (!pattern.test(out)) {
        if (Date.now() > deadline)
          throw new Error(`no ${pattern} in ${JSON.stringify(out.slice(-800))}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return out.match(pattern) ?? [];
    };
    try {
      const [, user, password] = await wait(/log in as '([^']+)' with password '([^']+)'/);
      await wait(/Escape character is/);
      child.stdin.write('\r');
      await wait(/login: $/m);
      child.stdin.write(`${user}\r`);
      await wait(/Password: /);
      child.stdin.write(`${password}\r`);
      const typed = out.length;
      await wait(new RegExp(`^[\\s\\S]{${typed}}[\\s\\S]*[#$] $`)); // the shell's prompt
      child.stdin.write('id -un; echo mark-$((6*7))\r');
      await wait(/mark-42/);
      // Without carriage returns and terminal control sequences (bracketed paste, size probes).
      // biome-ignore lint/suspicious/noControlCharactersInRegex: ESC sequences are what this strips
      const plain = out.replace(/\u001b\[[0-9;?]*[A-Za-z]|\u001b[78]|\r/g, '');
      expect(plain).toContain(`\n${user}\nmark-42`);
      child.stdin.write('\x1d');
      await new Promise((resolve) => child.on('exit', resolve));
      await wait(/Simulated host stopped\./);
    } finally {
      try {
        process.kill(-(child.pid ?? 0), 'SIGKILL');
      } catch {
        // the group is gone
      }
    }
  }, 60_000);
});
