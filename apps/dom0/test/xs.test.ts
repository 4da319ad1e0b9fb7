import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { captureIo } from '@xencons/cli';
import { requirement } from '@xencons/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cxenstoredMissing,
  oursMissing,
  startCxenstored,
  startOurXenstored,
  type TestServer,
} from '../../../packages/xenstore/test/servers.js';
import { runXs } from '../src/commands/xs.js';

const exec = promisify(execFile);

function io(env: Record<string, string | undefined> = {}) {
  const c = captureIo(env);
  return { io: c.io, out: c.stdout, err: c.stderr };
}

describe('xencons xs without a daemon', () => {
  it('--help exits 0; no command or a bad one is a usage error (2)', async () => {
    const t = io();
    expect(await runXs(['--help'], t.io)).toBe(0);
    expect(t.out()).toContain('Usage: xencons xs <command>');
    expect(await runXs([], t.io)).toBe(2);
    expect(await runXs(['frob'], t.io)).toBe(2);
    expect(await runXs(['read'], t.io)).toBe(2);
    expect(await runXs(['write', '/a'], t.io)).toBe(2);
    expect(await runXs(['read', '/bad path'], t.io)).toBe(2);
    expect(await runXs(['chmod', '/a', 'x9'], t.io)).toBe(2);
    expect(await runXs(['--nope'], t.io)).toBe(2);
    expect(t.err()).toContain("unknown xs command 'frob'");
  });

  it('no daemon at the socket is an operational failure (1) naming the path', async () => {
    const t = io({ XENSTORED_PATH: '/nonexistent/xencons/socket' });
    expect(await runXs(['read', '/x'], t.io)).toBe(1);
    expect(t.err()).toContain('/nonexistent/xencons/socket');
    const j = io();
    expect(await runXs(['read', '/x', '--json', '--socket', '/nonexistent/s'], j.io)).toBe(1);
    expect(JSON.parse(j.err()).error.code).toBe('ENOENT');
  });
});

const servers: [string, string | null, () => Promise<TestServer>][] = [
  ['C xenstored 4.17', cxenstoredMissing(), () => startCxenstored()],
  ['@xencons/xenstored', oursMissing(), () => startOurXenstored()],
];

for (const [name, missing, start] of servers) {
  requirement(name, missing).describe(`xencons xs against ${name}`, () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await start();
    });
    afterAll(async () => {
      await server?.stop();
    });
    const xs = async (...argv: string[]) => {
      const t = io({ XENSTORED_PATH: server.socketPath });
      const code = await runXs(argv, t.io);
      return { code, out: t.out(), err: t.err() };
    };

    it('write, read (text and --json), and xenstore-read agrees', async () => {
      // The whole result, so a failure shows what the command said.
      expect(await xs('write', '/cli/a', 'one', '/cli/b', 'two')).toMatchObject({
        code: 0,
        err: '',
      });
      expect(await xs('read', '/cli/a', '/cli/b')).toMatchObject({ code: 0, out: 'one\ntwo\n' });
      const j = await xs('read', '/cli/a', '--json');
      expect(JSON.parse(j.out)).toEqual({ '/cli/a': 'one' });
      const { stdout } = await exec('xenstore-read', ['/cli/b'], {
        env: { ...process.env, XENSTORED_PATH: server.socketPath },
      });
      expect(stdout).toBe('two\n');
    });

    it('--socket overrides XENSTORED_PATH', async () => {
      const t = io({ XENSTORED_PATH: '/nonexistent/socket' });
      expect(await runXs(['--socket', server.socketPath, 'write', '/cli/s', 'x'], t.io)).toBe(0);
    });

    it('a missing node exits 1 with ENOENT', async () => {
      const r = await xs('read', '/cli/missing');
      expect(r.code).toBe(1);
      expect(r.err).toContain('ENOENT');
    });

    it('ls prints the tree like xenstore-ls; --json gives paths and values; -p adds perms', async () => {
      await xs('write', '/cli/tree/x', '1', '/cli/tree/y/z', '2');
      const r = await xs('ls', '/cli/tree');
      expect(r.out).toBe('x = "1"\ny = ""\n z = "2"\n');
      const j = JSON.parse((await xs('ls', '/cli/tree', '--json', '-p')).out);
      expect(j).toEqual([
        { path: '/cli/tree/x', value: '1', perms: { owner: 0, others: 'none', entries: [] } },
        { path: '/cli/tree/y', value: '', perms: { owner: 0, others: 'none', entries: [] } },
        { path: '/cli/tree/y/z', value: '2', perms: { owner: 0, others: 'none', entries: [] } },
      ]);
    });

    it('chmod then perms (text and --json); xenstore-ls -p agrees', async () => {
      await xs('mkdir', '/cli/p');
      expect((await xs('chmod', '/cli/p', 'r0', 'b5')).code).toBe(0);
      expect((await xs('perms', '/cli/p')).out).toBe('r0 b5\n');
      expect(JSON.parse((await xs('perms', '/cli/p', '--json')).out)).toEqual({
        '/cli/p': { owner: 0, others: 'read', entries: [{ domid: 5, access: 'both' }] },
      });
      const { stdout } = await exec('xenstore-ls', ['-p', '/cli'], {
        env: { ...process.env, XENSTORED_PATH: server.socketPath },
      });
      expect(stdout).toMatch(/p = "".*\(r0,b5\)/);
    });

    it('rm and mkdir', async () => {
      await xs('mkdir', '/cli/m/n');
      expect((await xs('read', '/cli/m/n')).out).toBe('\n');
      expect((await xs('rm', '/cli/m')).code).toBe(0);
      expect((await xs('read', '/cli/m/n')).code).toBe(1);
    });

    it('watch -n prints the initial event and the change (JSON lines with --json)', async () => {
      await xs('mkdir', '/cli/w');
      const t = io({ XENSTORED_PATH: server.socketPath });
      const running = runXs(['watch', '/cli/w', '-n', '2', '--json'], t.io);
      for (let i = 0; i < 100 && !t.out().includes('/cli/w'); i++)
        await new Promise((r) => setTimeout(r, 10));
      await xs('write', '/cli/w/k', 'v');
      expect(await running).toBe(0);
      const events = t
        .out()
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).path);
      expect(events).toEqual(['/cli/w', '/cli/w/k']);
    });
  });
}
