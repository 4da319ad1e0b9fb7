import { requireNative } from '@xencons/native';
import { connectHypervisor, type HypervisorClient, readDom0Token } from '@xencons/sim-hypervisor';
import { openSimEventChannels } from '../sim-event-channels.js';
import { PeerProcess } from './peer-client.js';
import type { ConformanceScale, ConformanceTarget, SharedPage } from './target.js';

export interface SimTargetOptions {
  /** The folder of a running simulated host (`startHypervisor({ dir })`). */
  readonly dir: string;
  /** The peer program (default: the built `dist/conformance/peer.js`). */
  readonly peerScript?: string;
  readonly scale?: Partial<ConformanceScale>;
}

/** A million messages: two guests, 250,000 each way each. */
export const SIM_SCALE: ConformanceScale = {
  exchangeMessagesPerGuest: 250_000,
  adversaryRounds: 2000,
  waitMs: 5000,
  settleMs: 30,
};

/**
 * The conformance target on the simulated host in `dir`: we are dom0; foreign handles, peers and
 * bystanders are fresh domains, destroyed when released.
 */
export async function simConformanceTarget(options: SimTargetOptions): Promise<ConformanceTarget> {
  const { dir } = options;
  const dom0: HypervisorClient = await connectHypervisor({
    dir,
    domid: 0,
    token: readDom0Token(dir),
  });
  const scale = { ...SIM_SCALE, ...options.scale };
  let serial = 0;
  let bystander: number | null = null;
  const name = (what: string) => `evtchn-${what}-${process.pid}-${++serial}`;
  const destroy = (domid: number) => dom0.destroyDomain(domid).catch(() => {});

  return {
    name: 'sim',
    domid: 0,
    scale,
    missingDomid: 0x7000,
    open: () => openSimEventChannels(dom0),
    async openForeign() {
      const { domid, token } = await dom0.createDomain({ name: name('foreign') });
      const hc = await connectHypervisor({ dir, domid, token });
      const channels = await openSimEventChannels(hc);
      return {
        domid,
        channels,
        async release() {
          await channels.close();
          hc.close();
          await destroy(domid);
        },
      };
    },
    async bystanderDomid() {
      bystander ??= (await dom0.createDomain({ name: name('bystander') })).domid;
      return bystander;
    },
    async spawnPeer() {
      const { domid, token } = await dom0.createDomain({ name: name('peer') });
      const peer = new PeerProcess(
        domid,
        {
          XENCONS_EVTCHN_PEER_BACKEND: 'sim',
          XENCONS_SIM: dir,
          XENCONS_SIM_DOMID: String(domid),
          XENCONS_SIM_TOKEN: token,
        },
        {
          ...(options.peerScript === undefined ? {} : { script: options.peerScript }),
          afterExit: () => destroy(domid),
        },
      );
      try {
        await peer.call('open');
      } catch (err) {
        await peer.close();
        throw err;
      }
      return peer;
    },
    async sharePage(peer): Promise<SharedPage> {
      const { refs } = await peer.call<{ refs: number[] }>('sharePage', { grantee: 0 });
      const { pages } = await dom0.mapGrants(peer.domid, refs, true);
      const page = pages[0];
      if (page === undefined) throw new Error('mapGrants returned no page');
      const memory = requireNative().mapFile(page.path, page.offset, 4096, true);
      return {
        memory,
        async release() {
          requireNative().unmap(memory);
          await dom0.unmapGrants(peer.domid, refs).catch(() => {});
        },
      };
    },
    async close() {
      if (bystander !== null) await destroy(bystander);
      dom0.close();
    },
  };
}
