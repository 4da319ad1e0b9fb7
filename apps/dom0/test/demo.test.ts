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
