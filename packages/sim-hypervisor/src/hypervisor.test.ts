import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { requireNative } from '@xencons/native';
import { bundleChildScript, makeTempDir, waitUntil } from '@xencons/test-utils';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  connectHypervisor,
  type Hypervisor,
  type HypervisorClient,
  readDom0Token,
  SimHypervisorError,
  simPaths,
  startHypervisor,
} from './index.js';

let scratch: { path: string; remove: () => void };
let peerScript: string;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  scratch = await makeTempDir('sim-hv-');
  peerScript = await bundleChildScript(new URL('./test/peer.ts', import.meta.url), scratch.path);
});

afterAll(async () => {
  scratch.remove();
});

afterEach(() => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
});

/** Runs the peer script as a separate process with `env`; resolves its stdout lines as they come. */
function peer(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [peerScript, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  const waiters: { text: string; resolve: () => void }[] = [];
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    for (const waiter of [...waiters]) {
      if (stdout.includes(waiter.text)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return {
    child,
    exited,
    output: () => stdout,
    errors: () => stderr,
    waitFor: (text: string) =>
      stdout.includes(text)
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            waiters.push({ text, resolve });
            void exited.then((code) =>
              reject(new Error(`peer exited (${code}) before "${text}": ${stderr}`)),
            );
          }),
  };
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  await expect(promise).rejects.toSatisfy(
    (error: unknown) => error instanceof SimHypervisorError && error.code === code,
  );
}

describe('hypervisor', () => {
  let dir: string;
  let hv: Hypervisor;
  let dom0: HypervisorClient;

  beforeEach(async () => {
    dir = path.join(scratch.path, `host-${Math.random().toString(36).slice(2)}`);
    hv = await startHypervisor({ dir });
    dom0 = await connectHypervisor({ dir, domid: 0, token: readDom0Token(dir) });
  });

  afterEach(async () => {
    dom0.close();
    await hv.close();
  });

  it('lays out its folder and removes what it made on close', async () => {
    expect(fs.existsSync(simPaths.socket(dir))).toBe(true);
    expect(fs.statSync(simPaths.dom0Token(dir)).mode & 0o777).toBe(0o600);
    expect(fs.existsSync(simPaths.eventFile(dir, 0))).toBe(true);
    const other = await startHypervisor({ dir: `${dir}-second` });
    await other.close();
    expect(fs.readdirSync(`${dir}-second`)).toEqual([]);
  });

  it('refuses a second host on a live folder', async () => {
    await expectCode(startHypervisor({ dir }), 'EADDRINUSE');
  });

  it('refuses a wrong credential and unprivileged domain building', async () => {
    await expectCode(connectHypervisor({ dir, domid: 0, token: '00'.repeat(32) }), 'EACCES');
    const guest = await dom0.createDomain({ name: 'g1' });
    await expectCode(
      connectHypervisor({ dir, domid: guest.domid, token: readDom0Token(dir) }),
      'EACCES',
    );
    const g = await connectHypervisor({ dir, domid: guest.domid, token: guest.token });
    expect(g.privileged).toBe(false);
    await expectCode(g.createDomain({ name: 'x' }), 'EPERM');
    await expectCode(g.listDomains(), 'EPERM');
    await expectCode(g.allocMemory(0, 1), 'EPERM');
    await expectCode(g.mapForeignFrames(0, [0x1000], false), 'EPERM');
    await expectCode(g.grantFrame(guest.domid, { ref: 0, frame: 0x1000, grantee: 0 }), 'EINVAL');
    g.close();
  });

  it('hands out the next free domid from 1 and reuses a destroyed one', async () => {
    const a = await dom0.createDomain({ name: 'a' });
    const b = await dom0.createDomain({ name: 'b' });
    expect([a.domid, b.domid]).toEqual([1, 2]);
    await dom0.destroyDomain(1);
    expect((await dom0.createDomain({ name: 'c' })).domid).toBe(1);
    expect(await dom0.listDomains()).toEqual([
      { domid: 0, name: 'Domain-0' },
      { domid: 2, name: 'b' },
      { domid: 1, name: 'c' },
    ]);
  });

  it('answers a malformed or over-long line with EPROTO on that connection only', async () => {
    const raw = net.connect(simPaths.socket(dir));
    await once(raw, 'connect');
    raw.write('{"id": 1, "op": \n');
    const [reply] = (await once(raw, 'data')) as [Buffer];
    expect(JSON.parse(reply.toString()).code).toBe('EPROTO');
    await once(raw, 'close');
    const big = net.connect(simPaths.socket(dir));
    await once(big, 'connect');
    big.on('error', () => {});
    big.resume();
    big.write('x'.repeat(70 * 1024));
    await once(big, 'close');
    expect((await dom0.listDomains()).length).toBe(1);
  });

  describe('event channels', () => {
    it('connects two ports, delivers notifies and raises the bound port once', async () => {
      const a = await dom0.openEventHandle();
      const b = await dom0.openEventHandle();
      const seenA: number[] = [];
      const seenB: number[] = [];
      a.onPending = (ports) => seenA.push(...ports);
      b.onPending = (ports) => seenB.push(...ports);
      const pa = await a.allocUnbound(0);
      const pb = await b.bindInterdomain(0, pa);
      await waitUntil(() => seenB.length === 1, 'the first event at B', 5000, 5);
      expect(seenB).toEqual([pb]); // Xen sets the new local port pending
      a.notify(pa);
      await waitUntil(() => seenB.length === 2, 'the second event at B', 5000, 5);
      b.notify(pb);
      await waitUntil(() => seenA.length === 1, 'the event at A', 5000, 5);
      expect(seenA).toEqual([pa]);
      expect(await dom0.portStatus(pa)).toMatchObject({ state: 'interdomain', remotePort: pb });
      await a.close();
      await b.close();
    });

    it('refuses notify on ports not bound through the handle, and drops it on an unbound port', async () => {
      const a = await dom0.openEventHandle();
      const b = await dom0.openEventHandle();
      const pa = await a.allocUnbound(0);
      expect(() => b.notify(pa)).toThrow(expect.objectContaining({ code: 'ENOTCONN' }));
      expect(() => a.notify(4000)).toThrow(expect.objectContaining({ code: 'ENOTCONN' }));
      expect(() => a.notify(pa)).not.toThrow(); // unbound: dropped, as Xen does
      const pb = await b.bindInterdomain(0, pa);
      await b.unbind(pb);
      expect(await dom0.portStatus(pa)).toMatchObject({ state: 'unbound', remoteDomid: 0 });
      expect(() => a.notify(pa)).not.toThrow();
      expect(() => b.notify(pb)).toThrow(expect.objectContaining({ code: 'ENOTCONN' }));
      await a.close();
      expect(() => a.notify(pa)).toThrow(expect.objectContaining({ code: 'ENOTCONN' }));
      await b.close();
    });

    it('keeps an event pending until a handle attaches the port', async () => {
      const guest = await dom0.createDomain({ name: 'g' });
      const { port: guestPort } = await dom0.allocUnboundFor(guest.domid, 0);
      const d = await dom0.openEventHandle();
      const dport = await d.bindInterdomain(guest.domid, guestPort);
      d.notify(dport); // nobody listens in the guest yet
      const g = await connectHypervisor({ dir, domid: guest.domid, token: guest.token });
      const gh = await g.openEventHandle();
      const seen: number[] = [];
      gh.onPending = (ports) => seen.push(...ports);
      await gh.attach(guestPort);
      await waitUntil(() => seen.length === 1, 'the event', 5000, 5);
      expect(seen).toEqual([guestPort]);
      await expectCode(
        g.openEventHandle().then((h) => h.attach(guestPort)),
        'EBUSY',
      );
      g.close();
      await d.close();
    });

    it('ping-pongs with a guest in another process', async () => {
      const guest = await dom0.createDomain({ name: 'pp' });
      const h = await dom0.openEventHandle();
      const port = await h.allocUnbound(guest.domid);
      const rounds = 2000;
      const p = peer(['pingpong', '0', String(port), String(rounds)], {
        XENCONS_SIM: dir,
        XENCONS_SIM_DOMID: String(guest.domid),
        XENCONS_SIM_TOKEN: guest.token,
      });
      await p.waitFor('ready');
      let answers = 0;
      const done = new Promise<void>((resolve) => {
        h.onPending = () => {
          answers++;
          if (answers === rounds) resolve();
          else h.notify(port);
        };
      });
      h.notify(port);
      await done;
      await p.waitFor('done');
      expect(await p.exited).toBe(0);
      expect(answers).toBe(rounds);
      await h.close();
    });

    it('turns a killed guest process into unbound ports, and destroy into a closed connection', async () => {
      const guest = await dom0.createDomain({ name: 'k' });
      const h = await dom0.openEventHandle();
      const port = await h.allocUnbound(guest.domid);
      const env = {
        XENCONS_SIM: dir,
        XENCONS_SIM_DOMID: String(guest.domid),
        XENCONS_SIM_TOKEN: guest.token,
      };
      const p = peer(['hold', '0', String(port)], env);
      await p.waitFor('ready');
      expect(await dom0.portStatus(port)).toMatchObject({ state: 'interdomain' });
      p.child.kill('SIGKILL');
      await p.exited;
      await waitUntil(
        async () => (await dom0.portStatus(port)).state === 'unbound',
        'the port unbound',
        5000,
        5,
      );
      expect(() => h.notify(port)).not.toThrow();
      const g = await connectHypervisor({ dir, domid: guest.domid, token: guest.token });
      const closed = once(g, 'close');
      await dom0.destroyDomain(guest.domid);
      await closed;
      expect(fs.existsSync(simPaths.eventFile(dir, guest.domid))).toBe(false);
      await h.close();
    });
  });

  describe('grants', () => {
    it('lets only the grantee map, only while the grant stands', async () => {
      const g1 = await dom0.createDomain({ name: 'g1' });
      const g2 = await dom0.createDomain({ name: 'g2' });
      const c1 = await connectHypervisor({ dir, domid: g1.domid, token: g1.token });
      const shared = await c1.shareGrant(0, 2);
      expect(shared.refs).toEqual([8, 9]);
      const page = new Uint8Array(requireNative().mapFile(shared.path, shared.offset, 8192, true));
      page.set([1, 2, 3, 4], 4096);
      const mapped = await dom0.mapGrants(g1.domid, [9], true);
      const mine = mapped.pages[0];
      if (!mine) throw new Error('no page');
      const view = new Uint8Array(requireNative().mapFile(mine.path, mine.offset, 4096, true));
      expect([...view.subarray(0, 4)]).toEqual([1, 2, 3, 4]);
      view[4] = 9;
      expect(page[4100]).toBe(9);

      const c2 = await connectHypervisor({ dir, domid: g2.domid, token: g2.token });
      await expectCode(c2.mapGrants(g1.domid, [8], false), 'EACCES');
      await expectCode(c2.mapGrants(g1.domid, [77], false), 'ENOENT');
      const ro = await c1.shareGrant(g2.domid, 1, { readonly: true });
      await expectCode(c2.mapGrants(g1.domid, ro.refs, true), 'EPERM');
      const roPage = (await c2.mapGrants(g1.domid, ro.refs, false)).pages[0];
      expect(roPage?.path).toBe(ro.path);
      const p = peer(['map', String(g1.domid), String(ro.refs[0])], {
        XENCONS_SIM: dir,
        XENCONS_SIM_DOMID: String(g2.domid),
        XENCONS_SIM_TOKEN: g2.token,
      });
      expect(await p.exited).toBe(0);
      expect(p.output().trim()).toBe('00'.repeat(16));

      await c1.endGrant([8]);
      await expectCode(dom0.mapGrants(g1.domid, [8], false), 'ENOENT');
      await expectCode(c1.endGrant([8]), 'ENOENT');
      c1.close(); // gntalloc: closing ends the rest of its shares
      await waitUntil(
        async () => {
          try {
            await dom0.mapGrants(g1.domid, [9], false);
            return false;
          } catch (error) {
            return (error as SimHypervisorError).code === 'ENOENT';
          }
        },
        'the closed connection to end its other grants',
        5000,
        5,
      );
      requireNative().unmap(page.buffer as ArrayBuffer);
      requireNative().unmap(view.buffer as ArrayBuffer);
      c2.close();
    });

    it('lets the toolstack build a guest: memory, reserved grants, frames, start info', async () => {
      const g = await dom0.createDomain({ name: 'built' });
      const mem = await dom0.allocMemory(g.domid, 2);
      expect(mem.frames).toEqual([0x1000, 0x1001]);
      expect(await dom0.grantFrame(g.domid, { ref: 0, frame: 0x1000, grantee: 0 })).toEqual({
        ref: 0,
      });
      await expectCode(dom0.grantFrame(g.domid, { ref: 0, frame: 0x1001, grantee: 0 }), 'EBUSY');
      await expectCode(dom0.grantFrame(g.domid, { frame: 0x9999, grantee: 0 }), 'EINVAL');
      const byGrant = (await dom0.mapGrants(g.domid, [0], true)).pages[0];
      const byFrame = (await dom0.mapForeignFrames(g.domid, [0x1000], true)).pages[0];
      expect(byGrant).toEqual(byFrame);
      await dom0.setDomainInfo(g.domid, { console: { frame: 0x1000 } });
      const gc = await connectHypervisor({ dir, domid: g.domid, token: g.token });
      expect(await gc.getDomainInfo()).toEqual({ console: { frame: 0x1000 } });
      await expectCode(gc.getDomainInfo(0), 'EPERM');
      await expectCode(gc.grantFrame(g.domid, { ref: 1, frame: 0x1001, grantee: 0 }), 'EPERM');
      gc.close();
    });
  });
});

describe('a host killed with SIGKILL', () => {
  it('leaves nothing that breaks the next start on the same folder', async () => {
    const dir = path.join(scratch.path, 'killed');
    const script = path.join(scratch.path, 'host.mjs');
    const entry = pathToHypervisorEntry();
    fs.writeFileSync(
      script,
      `import { startHypervisor } from ${JSON.stringify(entry)};\nawait startHypervisor({ dir: ${JSON.stringify(dir)} });\nprocess.stdout.write('up\\n');\n`,
    );
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.add(child);
    await once(child.stdout!, 'data');
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect(fs.existsSync(simPaths.socket(dir))).toBe(true);
    const hv = await startHypervisor({ dir });
    const c = await connectHypervisor({ dir, domid: 0, token: readDom0Token(dir) });
    expect((await c.listDomains()).map((d) => d.domid)).toEqual([0]);
    c.close();
    await hv.close();
  });
});

describe('V8 Atomics on a shared file mapping', () => {
  it('are atomic across processes (the event files rely on it)', async () => {
    const file = path.join(scratch.path, 'atomics.page');
    fs.writeFileSync(file, Buffer.alloc(4096));
    const count = 2_000_000;
    const runs = [peer(['atomics', file, String(count)]), peer(['atomics', file, String(count)])];
    const own = new Int32Array(requireNative().mapFile(file, 0, 4096, true));
    await waitUntil(() => Atomics.load(own, 2) === 2, 'both peers ready', 20_000, 5);
    Atomics.store(own, 1, 1);
    expect(await Promise.all(runs.map((r) => r.exited))).toEqual([0, 0]);
    expect(Atomics.load(own, 0)).toBe(2 * count);
    requireNative().unmap(own.buffer as ArrayBuffer);
  });
});

let hypervisorEntry: string | undefined;
function pathToHypervisorEntry(): string {
  hypervisorEntry ??= peerScript.replace(/peer\.mjs$/, 'hypervisor-entry.mjs');
  return hypervisorEntry;
}

beforeAll(async () => {
  const entry = await bundleChildScript(new URL('./index.ts', import.meta.url), scratch.path);
  fs.renameSync(entry, pathToHypervisorEntry());
});
