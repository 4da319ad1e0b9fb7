import { execFile } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { consoleBackendRings, RingDuplex } from '@xencons/ring';
import { bundleChildScript, commandExists, makeTempDir, requirement } from '@xencons/test-utils';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  GNTTAB_RESERVED_CONSOLE,
  PortSignals,
  type SimDomain,
  type SimHost,
  SimHostClient,
  serveHostControl,
  startSimHost,
} from './index.js';
import { mapPage, unmapPage } from './pages.js';

const run = promisify(execFile);
let scratch: { path: string; remove: () => void };
let guestMain: string;
let probe: string;

beforeAll(async () => {
  scratch = makeTempDir('sim-host-');
  guestMain = await bundleChildScript(new URL('./guest-main.ts', import.meta.url), scratch.path);
  probe = await bundleChildScript(new URL('./test/guest-probe.ts', import.meta.url), scratch.path);
});

afterAll(() => scratch.remove());

/** dom0's end of a guest's primary console, mapped through grant 0 as xenconsoled does. */
async function attachConsole(host: SimHost, domain: SimDomain) {
  const { pages } = await host.dom0.mapGrants(domain.domid, [GNTTAB_RESERVED_CONSOLE], true);
  const page = mapPage(pages[0]);
  const handle = await host.dom0.openEventHandle();
  const signals = new PortSignals(handle);
  const port = await handle.bindInterdomain(domain.domid, domain.consolePort);
  const rings = consoleBackendRings(page);
  const stream = new RingDuplex({ rx: rings.out, tx: rings.in, signal: signals.signal(port) });
  let text = '';
  stream.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  const waitFor = async (needle: string, ms = 10_000) => {
    const deadline = Date.now() + ms;
    while (!text.includes(needle)) {
      if (Date.now() > deadline)
        throw new Error(
          `console never showed ${JSON.stringify(needle)}; got ${JSON.stringify(text)}`,
        );
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  return {
    stream,
    text: () => text,
    waitFor,
    async close() {
      stream.destroy();
      await handle.close();
      unmapPage(page);
    },
  };
}

describe('simulated host', () => {
  let dir: string;
  let host: SimHost;

  beforeEach(async () => {
    dir = path.join(scratch.path, `host-${Math.random().toString(36).slice(2)}`);
    host = await startSimHost({ dir, guestMain });
  });

  afterEach(async () => {
    await host.close();
  });

  it('builds guests as separate processes that speak xenstore over their rings with their own identity', async () => {
    const g1 = await host.createDomain({
      name: 'alpha',
      program: [process.execPath, probe],
      env: { PROBE_OTHER: '2' },
    });
    const g2 = await host.createDomain({
      name: 'beta',
      program: [process.execPath, probe],
      env: { PROBE_OTHER: '1' },
    });
    expect([g1.domid, g2.domid]).toEqual([1, 2]);
    expect(g1.pid).not.toBe(process.pid);
    const c1 = await attachConsole(host, g1);
    const c2 = await attachConsole(host, g2);
    await c1.waitFor('ready');
    await c2.waitFor('ready');
    expect(c1.text()).toContain('name=alpha\n');
    expect(c1.text()).toContain('data=written by the guest\n');
    expect(c1.text()).toContain('other=EACCES\n');
    expect(c1.text()).toContain('ring-ref=EACCES\n');
    expect(c2.text()).toContain('name=beta\n');
    expect(await host.xs.readString('/local/domain/1/data/probe')).toBe('written by the guest');

    c1.stream.write('echo me\n');
    await c1.waitFor('echo me\n');
    await c1.close();
    await c2.close();
  });

  it('writes the console and domain nodes with the permissions libxl uses', async () => {
    const g = await host.createDomain({ name: 'layout' });
    const dom = `/local/domain/${g.domid}`;
    const perms = async (node: string) => (await host.xs.getPerms(node)) as unknown;
    expect(await host.xs.readString(`${dom}/console/ring-ref`)).toBe(String(g.consoleFrame));
    expect(await host.xs.readString(`${dom}/console/port`)).toBe(String(g.consolePort));
    expect(await host.xs.readString(`${dom}/console/limit`)).toBe('1048576');
    expect(await host.xs.readString(`${dom}/console/type`)).toBe('xenconsoled');
    expect(await host.xs.readString(`${dom}/console/tty`)).toBe('');
    expect(await perms(`${dom}/console/port`)).toEqual({
      owner: 0,
      others: 'none',
      entries: [{ domid: g.domid, access: 'read' }],
    });
    expect(await perms(`${dom}/console/backend-id`)).toEqual({
      owner: g.domid,
      others: 'none',
      entries: [{ domid: 0, access: 'read' }],
    });
    expect(await perms(`${dom}/data`)).toEqual({ owner: g.domid, others: 'none', entries: [] });
    expect(await perms(`${dom}/control/shutdown`)).toEqual({
      owner: g.domid,
      others: 'none',
      entries: [],
    });
    expect(
      await host.xs.readString(`/local/domain/0/backend/console/${g.domid}/0/frontend-id`),
    ).toBe(String(g.domid));
    expect(await host.xs.isDomainIntroduced(g.domid)).toBe(true);
  });

  it('joins a --cmd program to the primary console', async () => {
    const g = await host.createDomain({ name: 'cat', cmd: 'cat' });
    const c = await attachConsole(host, g);
    c.stream.write('through the ring\n');
    await c.waitFor('through the ring\n');
    await c.close();
  });

  it('fires @introduceDomain and @releaseDomain, and cleans up after a killed guest', async () => {
    const watch = await host.xs.watch('@releaseDomain');
    const events = watch[Symbol.asyncIterator]();
    await events.next(); // the initial event
    const victim = await host.createDomain({ name: 'victim' });
    const bystander = await host.createDomain({ name: 'bystander', cmd: 'cat' });
    const c = await attachConsole(host, bystander);
    const gone = once(host, 'domainDestroyed');
    process.kill(victim.pid ?? 0, 'SIGKILL');
    const [destroyed] = (await gone) as [SimDomain];
    expect(destroyed.name).toBe('victim');
    await events.next();
    expect(await host.xs.exists(`/local/domain/${victim.domid}`)).toBe(false);
    expect(host.list().map((d) => d.name)).toEqual(['bystander']);
    expect(
      fs.readdirSync(path.join(dir, 'mem')).some((f) => f.startsWith(`d${victim.domid}-`)),
    ).toBe(false);
    c.stream.write('still here\n');
    await c.waitFor('still here\n');
    await c.close();
    await watch.close();
  });

  it('serves other processes on its control socket', async () => {
    const server = await serveHostControl(host, () => {});
    const client = await SimHostClient.connect(dir);
    const created = await client.create({ name: 'remote' });
    expect((await client.list()).map((d) => d.name)).toEqual(['remote']);
    await expect(client.create({ name: 'remote' })).rejects.toMatchObject({ code: 'EEXIST' });
    await client.destroy('remote');
    expect(await client.list()).toEqual([]);
    await expect(client.destroy(String(created.domid))).rejects.toMatchObject({ code: 'ENOENT' });
    client.close();
    server.close();
  });

  requirement(
    'xenstore-utils (xenstore-ls)',
    commandExists('xenstore-ls') ? null : 'install the Debian package xenstore-utils',
  ).describe('with Xen tools', () => {
    it('shows the layout to xenstore-ls -f -p through XENSTORED_PATH', async () => {
      await host.createDomain({ name: 'one' });
      await host.createDomain({ name: 'two' });
      const { stdout } = await run('xenstore-ls', ['-f', '-p'], {
        env: { ...process.env, XENSTORED_PATH: path.join(dir, 'xenstored.sock') },
      });
      expect(stdout).toMatch(/^\/local\/domain\/1\/name = "one"\s+\(n0,r1\)$/m);
      expect(stdout).toMatch(/^\/local\/domain\/2\/console\/ring-ref = "\d+"\s+\(n0,r2\)$/m);
      expect(stdout).toMatch(/^\/local\/domain\/2\/data = ""\s+\(n2\)$/m);
      expect(stdout).toMatch(
        /^\/local\/domain\/0\/backend\/console\/1\/0\/protocol = "vt100"\s+\(n0,r1\)$/m,
      );
    });
  });
});
