import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir, requirement } from '@xencons/test-utils';
import { XsType } from '@xencons/xenstore';
import { expect, it } from 'vitest';
import { TestClient } from '../test/client.js';
import { main } from './cli.js';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const built = requirement(
  'a built xencons-xenstored (turbo run build)',
  existsSync(CLI) ? null : `${CLI} not built`,
);

const io = () => {
  let out = '';
  let err = '';
  return {
    io: {
      stdout: {
        write: (s: string) => {
          out += s;
        },
      },
      stderr: {
        write: (s: string) => {
          err += s;
        },
      },
    },
    out: () => out,
    err: () => err,
  };
};

it('prints help with exit 0 and refuses bad usage with exit 2', async () => {
  const a = io();
  expect(await main(['--help'], a.io)).toBe(0);
  expect(a.out()).toContain('--socket PATH');
  const b = io();
  expect(await main([], b.io)).toBe(2);
  expect(b.err()).toContain('--socket PATH is required');
  expect(await main(['--socket', '/x', '--quota', 'nodes=0'], io().io)).toBe(2);
  expect(await main(['--bogus'], io().io)).toBe(2);
});

built.describe('xencons-xenstored as a program', () => {
  it('logs readiness once, serves the socket, writes the pid file and exits 0 on SIGTERM', async () => {
    const dir = makeTempDir('xencons-xenstored-cli-');
    const socket = join(dir.path, 'socket');
    const pidFile = join(dir.path, 'pid');
    const trace = join(dir.path, 'trace');
    const child = spawn(
      process.execPath,
      [CLI, '--socket', socket, '--pid-file', pidFile, '--trace', trace],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    try {
      let err = '';
      await new Promise<void>((resolve, reject) => {
        child.stderr.on('data', (d: Buffer) => {
          err += d.toString();
          if (err.includes('ready on')) resolve();
        });
        child.once('exit', (code) => reject(new Error(`exited ${code}: ${err}`)));
      });
      expect(readFileSync(pidFile, 'utf8').trim()).toBe(String(child.pid));
      expect(statSync(socket).mode & 0o777).toBe(0o600);
      const c = await TestClient.socket(socket);
      expect(await c.write('/hello', 'world')).toBe('OK\0');
      expect(await c.call(XsType.READ, '/hello\0')).toBe('world');
      c.close();
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(err.match(/ready on/g)).toHaveLength(1);
      expect(existsSync(pidFile)).toBe(false);
      expect(readFileSync(trace, 'utf8')).toMatch(/IN socket#\d+ \S+ WRITE \(\/hello world\)/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      dir.remove();
    }
  });
});
