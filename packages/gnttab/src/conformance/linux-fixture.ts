import type { Gnttab } from '../gnttab.js';
import { openLinuxGnttab } from '../linux-gnttab.js';
import type { ConsoleDomain, GnttabFixture } from './fixture.js';
import { type Peer, peerPool, type SpawnPeerOptions, spawnPeer, tracked } from './peer-client.js';

export interface LinuxFixtureOptions {
  /** Our domid (default 0: dom0, where gntalloc shares with itself and gntdev maps it). */
  readonly domid?: number;
  /**
   * A domain that is neither ours nor the peers' (default: the console domain's, else 0x7fef;
   * Xen does not check that a grantee exists).
   */
  readonly otherDomid?: number;
  /** A running guest's console: its domid and `console/ring-ref`. */
  readonly console?: ConsoleDomain | null;
  /** The user (and group) the unprivileged peer runs as (default 65534, nobody). */
  readonly unprivilegedUid?: number;
  /** The peer program (default: peer.js next to this module). */
  readonly peerScript?: string;
}

/**
 * Real Xen through the Linux devices, run as root in dom0: the peers are other dom0 processes
 * (same domid, separate processes and device handles), the unprivileged peer runs as `nobody`.
 */
export async function openLinuxFixture(options: LinuxFixtureOptions = {}): Promise<GnttabFixture> {
  const domid = options.domid ?? 0;
  const consoleDomain = options.console ?? null;
  const handles = new Set<Gnttab>();
  const peers = new Set<Peer>();
  const open = async () => {
    const g = openLinuxGnttab({ domid });
    handles.add(g);
    return g;
  };
  const start = async (extra: Partial<SpawnPeerOptions>) => {
    const peer = await spawnPeer({
      backend: 'linux',
      args: ['--domid', String(domid)],
      ...(options.peerScript === undefined ? {} : { script: options.peerScript }),
      ...extra,
    });
    return tracked(peer, peers);
  };
  const uid = options.unprivilegedUid ?? 65534;
  const privileged = peerPool(() => start({}));
  const unprivileged = peerPool(() => start({ uid, gid: uid }));
  return {
    backend: 'linux',
    gnttab: await open(),
    domid,
    otherDomid: options.otherDomid ?? consoleDomain?.domid ?? 0x7fef,
    peerDomid: domid,
    open,
    peer: privileged.get,
    newPeer: () => start({}),
    unprivilegedPeer: unprivileged.get,
    console: consoleDomain,
    frameOnlyConsole: null,
    close: async () => {
      await privileged.stop().catch(() => {});
      await unprivileged.stop().catch(() => {});
      for (const p of [...peers]) await p.kill().catch(() => {});
      for (const g of [...handles]) await g.close().catch(() => {});
    },
  };
}
