import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { captureIo } from '@xencons/cli';
import { nativeUnavailableReason } from '@xencons/native';
import { commandExists, makeTempDir, requirement } from '@xencons/test-utils';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { main } from '../src/index.js';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const cli = join(here, '..', 'dist', 'cli.js');
const scratch = makeTempDir('xencons-sim-cli-');
const started: number[] = [];

afterAll(() => scratch.remove());
afterEach(() => {
  // Only hosts this file started, by PID.
  for (const pid of started.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const xencons = (args: string[], env: Record<string, string> = {}) =>
  run(process.execPath, [cli, ...args], { env: { ...process.env, ...env }, timeout: 60_000 });

describe('xencons sim (usage)', () => {
  it('prints help and refuses bad usage with exit 2', async () => {
    const c = captureIo();
    expect(await main(['sim', '--help'], c.io)).toBe(0);
    expect(c.stdout()).toContain('xencons sim start [--dir DIR] [--detach]');
    expect(await main(['sim', 'create'], c.io)).toBe(2);
    expect(await main(['sim', 'frob'], c.io)).toBe(2);
    expect(await main(['sim', 'list', '--bogus'], c.io)).toBe(2);
    expect(c.stderr()).toContain("unknown command 'frob'");
  });

  it('says clearly when no host runs in the folder', async () => {
    const c = captureIo();
    expect(await main(['sim', 'list', '--sim', join(scratch.path, 'nothing')], c.io)).toBe(1);
    expect(c.stderr()).toContain('no simulated host is running in');
  });
});

const needs = requirement(
  'the native addon and a built xencons (dist/cli.js)',
  nativeUnavailableReason() ?? (existsSync(cli) ? null : `${cli} is missing: run pnpm build`),
);

needs.describe('xencons sim (a real host in the background)', () => {
  it('starts detached, builds guests, lists, destroys and stops leaving nothing behind', async () => {
    const dir = join(scratch.path, 'host');
    const { stdout } = await xencons(['sim', 'start', '--dir', dir, '--detach']);
    expect(stdout.trim()).toBe(dir);
    const created = JSON.parse(
      (await xencons(['sim', 'create', 'web', '--cmd', 'cat', '--json'], { XENCONS_SIM: dir }))
        .stdout,
    );
    expect(created).toMatchObject({ domid: 1, name: 'web' });
    await xencons(['sim', 'create', 'db', '--sim', dir]);
    const listed = JSON.parse((await xencons(['sim', 'list', '--json', '--sim', dir])).stdout);
    expect(listed.domains.map((d: { name: string }) => d.name)).toEqual(['web', 'db']);
    const table = (await xencons(['sim', 'list', '--sim', dir])).stdout;
    expect(table).toMatch(/^DOMID\s+NAME\s+PID/);
    expect(table).toMatch(/^2\s+db\s+\d+/m);
    await expect(xencons(['sim', 'create', 'web', '--sim', dir])).rejects.toMatchObject({
      code: 1,
    });
    await xencons(['sim', 'destroy', 'web', '--sim', dir]);
    expect(
      JSON.parse((await xencons(['sim', 'list', '--json', '--sim', dir])).stdout).domains,
    ).toHaveLength(1);
    await xencons(['sim', 'stop', '--dir', dir]);
    expect(existsSync(dir)).toBe(false);
  });

  requirement(
    'xenstore-utils (xenstore-ls)',
    commandExists('xenstore-ls') ? null : 'install the Debian package xenstore-utils',
  ).describe('with Xen tools', () => {
    it('serves xenstore-ls and xenstore-read through XENSTORED_PATH', async () => {
      const dir = join(scratch.path, 'xs-host');
      await xencons(['sim', 'start', '--dir', dir, '--detach']);
      try {
        await xencons(['sim', 'create', 'one', '--sim', dir]);
        const env = { ...process.env, XENSTORED_PATH: join(dir, 'xenstored.sock') };
        expect((await run('xenstore-read', ['/local/domain/1/name'], { env })).stdout.trim()).toBe(
          'one',
        );
        const { stdout } = await run('xenstore-ls', ['-f', '-p', '/local/domain/1'], { env });
        expect(stdout).toMatch(/^\/local\/domain\/1\/console\/type = "xenconsoled"\s+\(n0,r1\)$/m);
      } finally {
        await xencons(['sim', 'stop', '--dir', dir]);
      }
    });
  });

  it('starts again on the folder of a host killed with SIGKILL', async () => {
    const dir = join(scratch.path, 'killed');
    const host = spawn(process.execPath, [cli, 'sim', 'start', '--dir', dir], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    started.push(host.pid ?? 0);
    let err = '';
    host.stderr.on('data', (chunk) => {
      err += chunk;
    });
    while (!err.includes('ready')) await once(host.stderr, 'data');
    await xencons(['sim', 'create', 'orphan', '--sim', dir, '--cmd', 'sleep 60']);
    const guestPid = JSON.parse((await xencons(['sim', 'list', '--json', '--sim', dir])).stdout)
      .domains[0].pid as number;
    host.kill('SIGKILL');
    await once(host, 'exit');
    expect(readdirSync(dir)).toContain('hypervisor.sock'); // stale
    // A guest whose host died ends itself (and its command) once its hypervisor connection drops.
    const deadline = Date.now() + 10_000;
    while (alive(guestPid) && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
    expect(alive(guestPid)).toBe(false);
    const { stdout } = await xencons(['sim', 'start', '--dir', dir, '--detach']);
    expect(stdout.trim()).toBe(dir);
    await xencons(['sim', 'create', 'fresh', '--sim', dir]);
    const domains = JSON.parse(
      (await xencons(['sim', 'list', '--json', '--sim', dir])).stdout,
    ).domains;
    expect(domains.map((d: { domid: number; name: string }) => [d.domid, d.name])).toEqual([
      [1, 'fresh'],
    ]);
    await xencons(['sim', 'stop', '--dir', dir]);
    expect(existsSync(join(dir, 'hypervisor.sock'))).toBe(false);
  });
});
