import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireNative } from '@xencons/native';
import { openLinuxEventChannels } from '../linux-event-channels.js';
import { PeerProcess } from './peer-client.js';
import type { ConformanceScale, ConformanceTarget, SharedPage } from './target.js';

export interface LinuxTargetOptions {
  /** The peer program (default: the built `dist/conformance/peer.js`). */
  readonly peerScript?: string;
  readonly scale?: Partial<ConformanceScale>;
}

/** Real Xen in dom0 under QEMU's emulation: everything is 10-50x slower than here. */
export const LINUX_SCALE: ConformanceScale = {
  exchangeMessagesPerGuest: 25_000,
  adversaryRounds: 200,
  waitMs: 20_000,
  settleMs: 200,
};

/**
 * The conformance target on real Xen through `/dev/xen/evtchn`, in dom0 talking to itself (an
 * unbound port for domid 0 and an interdomain bind to it work there). Foreign handles and peers
 * are other handles and processes of dom0; shared pages are a temp file mapped by both.
 */
export function linuxConformanceTarget(options: LinuxTargetOptions = {}): ConformanceTarget {
  const scratch = mkdtempSync(join(tmpdir(), 'xencons-evtchn-'));
  let pages = 0;
  return {
    name: 'linux',
    domid: 0,
    scale: { ...LINUX_SCALE, ...options.scale },
    missingDomid: 0x7000,
    open: async () => openLinuxEventChannels(),
    async openForeign() {
      const channels = openLinuxEventChannels();
      return { domid: 0, channels, release: () => channels.close() };
    },
    // Xen lets a port be offered to any domid, running or not.
    bystanderDomid: async () => 0x7001,
    async spawnPeer() {
      const peer = new PeerProcess(
        0,
        { XENCONS_EVTCHN_PEER_BACKEND: 'linux' },
        options.peerScript === undefined ? {} : { script: options.peerScript },
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
      const path = join(scratch, `page-${++pages}`);
      writeFileSync(path, new Uint8Array(4096));
      const memory = requireNative().mapFile(path, 0, 4096, true);
      await peer.call('mapPage', { path, offset: 0 });
      return {
        memory,
        async release() {
          requireNative().unmap(memory);
          rmSync(path, { force: true });
        },
      };
    },
    async close() {
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}
