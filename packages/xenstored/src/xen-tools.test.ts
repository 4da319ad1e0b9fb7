import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { makeTempDir, requirement } from '@xencons/test-utils';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type RunningXenstored, startXenstored } from './server.js';

// Xen's own client software against our daemon through XENSTORED_PATH (xen-protocols.md §1.1).
const run = promisify(execFile);
const TEST_XENSTORE = '/usr/lib/xen-4.17/bin/test-xenstore';
const UTILS = [
  'xenstore-write',
  'xenstore-read',
  'xenstore-ls',
  'xenstore-list',
  'xenstore-exists',
  'xenstore-chmod',
  'xenstore-rm',
  'xenstore-watch',
];
const missingUtil = UTILS.find((u) => !existsSync(`/usr/bin/${u}`));

const testXenstore = requirement(
  "Xen's test-xenstore (Debian xen-utils-4.17)",
  existsSync(TEST_XENSTORE) ? null : `${TEST_XENSTORE} not found`,
);
const xenstoreUtils = requirement(
  'Debian xenstore-utils',
  missingUtil === undefined ? null : `/usr/bin/${missingUtil} not found`,
);

let xsd: RunningXenstored;
let dir: { path: string; remove: () => void };
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  dir = makeTempDir('xencons-xenstored-xen-');
  const socketPath = join(dir.path, 'socket');
  xsd = await startXenstored({ socketPath });
  env = { ...process.env, XENSTORED_PATH: socketPath };
});
afterAll(async () => {
  await xsd?.close();
  dir?.remove();
});

const sh = async (cmd: string, args: string[]) => {
  try {
    const r = await run(cmd, args, { env, timeout: 20_000 });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof x.code === 'number' ? x.code : -1,
      out: x.stdout ?? '',
      err: x.stderr ?? '',
    };
  }
};

testXenstore.describe('test-xenstore (Xen 4.17) against our daemon', () => {
  it('passes all 12 tests', async () => {
    const list = await sh(TEST_XENSTORE, ['-l']);
    const names = list.out.split('\n').filter(Boolean);
    expect(names).toHaveLength(12);
    const r = await sh(TEST_XENSTORE, []);
    expect(r.code, r.out + r.err).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines).toHaveLength(12);
    for (const line of lines) expect(line).toMatch(/^[a-z0-9 ]+:\s+\d+ ns$/);
  });

  it('passes each test 50 times in a row', async () => {
    const r = await sh(TEST_XENSTORE, ['-i', '50']);
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).not.toContain('failed');
    expect(r.out.trim().split('\n')).toHaveLength(12);
  });

  it('passes a bounded random run (-r 3)', async () => {
    const r = await sh(TEST_XENSTORE, ['-r', '3']);
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out + r.err).not.toContain('failed');
    expect(xsd.daemon.check()).toEqual([]);
  });
});

xenstoreUtils.describe('xenstore-utils against our daemon', () => {
  it('write, read, exists, list, ls -f -p', async () => {
    expect((await sh('xenstore-write', ['/u/a', 'one', '/u/b/c', 'two'])).code).toBe(0);
    expect((await sh('xenstore-read', ['/u/a', '/u/b/c'])).out).toBe('one\ntwo\n');
    expect((await sh('xenstore-exists', ['/u/a'])).code).toBe(0);
    expect((await sh('xenstore-exists', ['/u/zz'])).code).not.toBe(0);
    expect((await sh('xenstore-list', ['/u'])).out).toBe('a\nb\n');
    const ls = await sh('xenstore-ls', ['-f', '-p', '/u']);
    expect(ls.out).toMatch(
      /^\/u\/a = "one"[ .]+\(n0\)\n\/u\/b = ""[ .]+\(n0\)\n\/u\/b\/c = "two"[ .]+\(n0\)\n$/,
    );
    expect((await sh('xenstore-read', ['/u/missing'])).code).toBe(1);
  });

  it('chmod sets an ACL that ls -p shows; rm -t removes a subtree and its empty parents', async () => {
    expect((await sh('xenstore-write', ['/c/d/e', 'v'])).code).toBe(0);
    expect((await sh('xenstore-chmod', ['/c/d/e', 'n5', 'r0', 'b7'])).code).toBe(0);
    expect((await sh('xenstore-ls', ['-p', '/c/d'])).out).toMatch(/^e = "v"[ .]+\(n5,r0,b7\)\n$/);
    expect((await sh('xenstore-chmod', ['-r', '/c', 'r0'])).code).toBe(0);
    expect((await sh('xenstore-ls', ['-f', '-p', '/c'])).out).toMatch(/\(r0\)\n.*\(r0\)\n$/s);
    expect((await sh('xenstore-rm', ['-t', '/c/d/e'])).code).toBe(0);
    expect((await sh('xenstore-exists', ['/c'])).code).not.toBe(0);
  });

  it('watch prints the initial event and later changes', async () => {
    const child = spawn('xenstore-watch', ['-n', '3', '/wt'], { env });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const done = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      for (let i = 0; i < 100 && out === ''; i++) await new Promise((r) => setTimeout(r, 20));
      await sh('xenstore-write', ['/wt/x', '1']);
      await sh('xenstore-rm', ['/wt']);
      expect(await done).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill();
    }
    expect(out).toBe('/wt\n/wt/x\n/wt\n');
  });
});
