/** Which world a handle talks to. */
export type GnttabBackend = 'linux' | 'sim';

/** Xen's page size: grants, frames and views are counted in these. */
export const PAGE_SIZE = 4096;

/**
 * Grant refs Xen's domain builder fills in before a guest starts (`GNTTAB_RESERVED_*`): ref 0
 * grants the primary console page to the console domain, ref 1 the xenstore page.
 */
export const GNTTAB_RESERVED_CONSOLE = 0;
export const GNTTAB_RESERVED_XENSTORE = 1;

export interface ShareOptions {
  /** Pages to share (default 1); they get one grant ref each and one contiguous view. */
  readonly count?: number;
  /** Grant them read-only: the grantee may map them only with `writable: false`. */
  readonly readonly?: boolean;
}

export interface MapOptions {
  /**
   * Map read-write (default) or read-only. Never write through a read-only view: the page is
   * mapped `PROT_READ` and a write kills the process (SIGSEGV), exactly as in C.
   */
  readonly writable?: boolean;
}

/** Pages of ours granted to another domain (gntalloc): the refs to publish and our view. */
export interface SharedPages {
  /** The domain the pages are granted to. */
  readonly grantee: number;
  /** One grant reference per page, in page order. */
  readonly refs: readonly number[];
  readonly readonly: boolean;
  /** All pages, contiguous (detached, byteLength 0, once ended). */
  readonly buffer: ArrayBuffer;
  readonly bytes: Uint8Array;
  /** One view per page. */
  readonly pages: readonly Uint8Array[];
  readonly ended: boolean;
  /**
   * Ends the grantee's access and releases our view. A grantee that still maps the pages keeps
   * its view until it unmaps (Xen cannot revoke a live mapping; Linux defers the end until
   * then); new maps fail. Idempotent.
   */
  end(): Promise<void>;
}

/** Another domain's pages mapped into this process (gntdev for grants, privcmd for frames). */
export interface ForeignMapping {
  /** The domain whose pages these are. */
  readonly domid: number;
  /** Mapped by grant reference or by frame number. */
  readonly kind: 'grant' | 'frame';
  /** The grant refs or frame numbers, in page order. */
  readonly refs: readonly number[];
  readonly writable: boolean;
  /** All pages, contiguous (detached, byteLength 0, once unmapped). */
  readonly buffer: ArrayBuffer;
  readonly bytes: Uint8Array;
  /** One view per page. */
  readonly pages: readonly Uint8Array[];
  readonly mapped: boolean;
  /** Unmaps; stale views then read nothing instead of crashing. Idempotent. */
  unmap(): Promise<void>;
}

/**
 * Page sharing with other domains, on real Xen or on the simulated host: like one open of Linux
 * `/dev/xen/gntalloc`, `/dev/xen/gntdev` and `/dev/xen/privcmd`. Misuse is refused with a
 * {@link GnttabError} whose `code` is the same on both backends.
 */
export interface Gnttab {
  readonly backend: GnttabBackend;
  /** Our domain, when the backend knows it (always on the simulated host; as given on Linux). */
  readonly domid: number | null;
  readonly closed: boolean;

  /** Grants `count` fresh zeroed pages of ours to `grantee`. */
  share(grantee: number, options?: ShareOptions): Promise<SharedPages>;
  /**
   * Maps grants `refs` of domain `domid` (granted to us) as one contiguous view.
   * `ERR_GNTTAB_NO_ACCESS`: not granted to us, unknown or ended; `ERR_GNTTAB_READ_ONLY`: a
   * writable map of a read-only grant.
   */
  map(domid: number, refs: readonly number[], options?: MapOptions): Promise<ForeignMapping>;
  /**
   * Maps frames of domain `domid` by number, as xenconsoled maps a PV guest's console page from
   * `console/ring-ref`. Privileged: `ERR_GNTTAB_NOT_PRIVILEGED` elsewhere.
   */
  mapFrames(
    domid: number,
    frames: readonly number[],
    options?: MapOptions,
  ): Promise<ForeignMapping>;
  /** Unmaps every mapping and ends every share made through this handle. Idempotent. */
  close(): Promise<void>;
}
