import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeUnavailableReason } from '@xencons/native';
import { requirement } from '@xencons/test-utils';
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
