import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Gnttab } from '../gnttab.js';
import { openSimGnttab, type SimGnttabHostLike } from '../sim-gnttab.js';
import type { ConsoleDomain, GnttabFixture } from './fixture.js';
import { type Peer, peerPool, spawnPeer, tracked } from './peer-client.js';

export interface SimFixtureOptions {
  /** The peer program (default: peer.js next to this module). */
  readonly peerScript?: string;
}

/**
 * A simulated host in a fresh temp folder, with this process as dom0 and three guests: one the
 * peers run as, one with a console page granted to us as grant 0 (and the domain we grant to
 * when a grant is "meant for another domain"), and one whose console page is not granted to us.
 */
export async function openSimFixture(options: SimFixtureOptions = {}): Promise<GnttabFixture> {
  const sim = await import('@xencons/sim-hypervisor');
  const root = mkdtempSync(join(tmpdir(), 'xencons-gnttab-'));
  const dir = join(root, 'host');
  const handles = new Set<Gnttab>();
  const peers = new Set<Peer>();
  const clients: { close(): unknown }[] = [];
  let hv: { close(): Promise<void> } | null = null;

  let pool: ReturnType<typeof peerPool> | null = null;
  const close = async () => {
    await pool?.stop().catch(() => {});
    for (const p of [...peers]) await p.kill().catch(() => {});
    for (const g of [...handles]) await g.close().catch(() => {});
    for (const c of clients) await Promise.resolve(c.close()).catch(() => {});
    await hv?.close().catch(() => {});
    rmSync(root, { recursive: true, force: true });
  };

  try {
    hv = await sim.startHypervisor({ dir });
    const token = sim.readDom0Token(dir);
    const connect = async (): Promise<Gnttab> => {
      const hc = await sim.connectHypervisor({ dir, domid: 0, token });
      clients.push(hc);
      const g = openSimGnttab(hc as SimGnttabHostLike);
      handles.add(g);
      return g;
    };
    const gnttab = await connect();
    const hc = (await sim.connectHypervisor({ dir, domid: 0, token })) as unknown as {
      createDomain(o: { name: string }): Promise<{ domid: number; token: string }>;
      allocMemory(domid: number, count: number): Promise<{ frames: number[] }>;
      grantFrame(
        domid: number,
        e: { ref: number; frame: number; grantee: number },
      ): Promise<unknown>;
      close(): unknown;
    };
    clients.push(hc);

    const peerDomain = await hc.createDomain({ name: 'gnttab-peer' });
    const consoleDomain = async (name: string, grantToUs: boolean): Promise<ConsoleDomain> => {
      const { domid } = await hc.createDomain({ name });
      const { frames } = await hc.allocMemory(domid, 1);
      const frame = frames[0]!;
      // What the domain builder does for a PV guest: grant 0 gives dom0 the console page.
      if (grantToUs) await hc.grantFrame(domid, { ref: 0, frame, grantee: 0 });
      return { domid, ringRef: frame };
    };
    const console = await consoleDomain('gnttab-console', true);
    const frameOnlyConsole = await consoleDomain('gnttab-frame-only', false);

    const startPeer = async () => {
      const peer = await spawnPeer({
        backend: 'sim',
        env: {
          XENCONS_SIM: dir,
          XENCONS_SIM_DOMID: String(peerDomain.domid),
          XENCONS_SIM_TOKEN: peerDomain.token,
        },
        ...(options.peerScript === undefined ? {} : { script: options.peerScript }),
      });
      return tracked(peer, peers);
    };

    pool = peerPool(startPeer);
    const shared = pool;
    return {
      backend: 'sim',
      gnttab,
      domid: 0,
      otherDomid: console.domid,
      peerDomid: peerDomain.domid,
      open: connect,
      peer: shared.get,
      newPeer: startPeer,
      // Guests are unprivileged on the simulated host.
      unprivilegedPeer: shared.get,
      console,
      frameOnlyConsole,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
