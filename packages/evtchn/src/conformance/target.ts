import type { EventChannels } from '../event-channels.js';
import type { PeerProcess } from './peer-client.js';

/** How much work the heavier cases do on a target (real Xen under emulation is slow). */
export interface ConformanceScale {
  /** Messages each of the two guests sends in `ring-exchange` (each is echoed, so 4x in all). */
  readonly exchangeMessagesPerGuest: number;
  /** Rounds per mode of the adversarial cases. */
  readonly adversaryRounds: number;
  /** Bound on every single wait for an event that must come. */
  readonly waitMs: number;
  /** How long a quiet spell must last before "no event arrived" is believed. */
  readonly settleMs: number;
}

/** A page both this process and a peer map (a grant on the simulated host, a file on Linux). */
export interface SharedPage {
  readonly memory: ArrayBuffer;
  release(): Promise<void>;
}

export interface ForeignHandle {
  readonly domid: number;
  readonly channels: EventChannels;
  release(): Promise<void>;
}

/**
 * One backend for the conformance suite: where handles come from, which domains exist, how peer
 * processes are started and how they share a page with us.
 */
export interface ConformanceTarget {
  readonly name: string;
  /** Our domain (the one `open()` handles live in). */
  readonly domid: number;
  readonly scale: ConformanceScale;
  open(): Promise<EventChannels>;
  /**
   * A handle in another domain, in this process (real Xen: dom0 again). `release` closes it and
   * whatever the target made for it.
   */
  openForeign(): Promise<ForeignHandle>;
  /**
   * A domain that is neither ours nor `openForeign`'s, to offer ports to (it need not run; on
   * real Xen a port may be offered to any domid).
   */
  bystanderDomid(): Promise<number>;
  /** A domid no domain has. */
  readonly missingDomid: number;
  /**
   * Starts a peer process in its own domain (real Xen: another dom0 process), opened; its
   * `close()` also releases what the target made for it.
   */
  spawnPeer(): Promise<PeerProcess>;
  /** A zeroed page shared between this process and `peer`. */
  sharePage(peer: PeerProcess): Promise<SharedPage>;
  close(): Promise<void>;
}
