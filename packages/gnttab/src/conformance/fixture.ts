import type { Gnttab } from '../gnttab.js';
import type { Peer } from './peer-client.js';

/** A domain with a primary console page: its domid and the frame in `console/ring-ref`. */
export interface ConsoleDomain {
  readonly domid: number;
  readonly ringRef: number;
}

/** What the conformance cases run against: one backend, this process as one domain, peers. */
export interface GnttabFixture {
  readonly backend: 'linux' | 'sim';
  /** This process's handle, and its domain. */
  readonly gnttab: Gnttab;
  readonly domid: number;
  /**
   * A domain that is neither ours nor the peers': what we grant to it is "meant for another
   * domain". It need not run anything (Xen does not check a grantee's existence).
   */
  readonly otherDomid: number;
  /** A new handle of our domain (closed by the case, or by the fixture's close). */
  open(): Promise<Gnttab>;
  /** The domain the peers run as (ours too on real Xen, where dom0 plays both). */
  readonly peerDomid: number;
  /**
   * Another OS process as domain `peerDomid`, shared between cases (its `close()` does nothing;
   * release what you made through it).
   */
  peer(): Promise<Peer>;
  /** A fresh peer process of its own, for cases that kill it; the case closes it. */
  newPeer(): Promise<Peer>;
  /** Another OS process that is not privileged (may not map other domains' frames), shared. */
  unprivilegedPeer(): Promise<Peer>;
  /** A domain whose console page is granted to us as grant 0 (and mappable by frame), or null. */
  readonly console: ConsoleDomain | null;
  /** A domain whose console page is not granted to us (xenconsoled's frame fallback), or null. */
  readonly frameOnlyConsole: ConsoleDomain | null;
  /** Stops every peer, closes every handle, removes what the fixture made. */
  close(): Promise<void>;
}
