import { loadNative, type NativeBinding, nativeUnavailableReason } from '@xencons/native';
import { type Gnttab, PAGE_SIZE } from './gnttab.js';
import { GnttabBase, type Made } from './gnttab-base.js';
import {
  backendError,
  checkInteger,
  errnoOf,
  GnttabCode,
  GnttabError,
  MAX_DOMID,
} from './gnttab-errors.js';

/** A page of the simulated host's memory: a 4096-byte region of a file. */
export interface SimPageRef {
  readonly path: string;
  readonly offset: number;
}

/**
 * What this backend needs of `@xencons/sim-hypervisor`'s `HypervisorClient` (one process's
 * connection to the simulated host, as one domain).
 */
export interface SimGnttabHostLike {
  readonly domid: number;
  shareGrant(
    grantee: number,
    count: number,
    options: { readonly?: boolean },
  ): Promise<{ refs: number[]; path: string; offset: number }>;
  endGrant(refs: readonly number[]): Promise<void>;
  mapGrants(
    domid: number,
    refs: readonly number[],
    writable: boolean,
  ): Promise<{ pages: SimPageRef[] }>;
  unmapGrants(domid: number, refs: readonly number[]): Promise<void>;
  mapForeignFrames(
    domid: number,
    frames: readonly number[],
    writable: boolean,
  ): Promise<{ pages: SimPageRef[] }>;
  on(event: 'close', listener: () => void): unknown;
  off?(event: 'close', listener: () => void): unknown;
}

type Native = Pick<NativeBinding, 'mapFile' | 'unmap'>;

/** The first page's file and offset when `pages` are consecutive in one file, else null. */
function contiguous(pages: readonly SimPageRef[]): SimPageRef | null {
  const first = pages[0];
  if (first === undefined) return null;
  for (let i = 1; i < pages.length; i++) {
    const p = pages[i]!;
    if (p.path !== first.path || p.offset !== first.offset + i * PAGE_SIZE) return null;
  }
  return first;
}

/**
 * Grants on the simulated host: it keeps the grant tables and says which file region each page
 * is; this process maps those regions MAP_SHARED through the native core, so both domains see
 * the same memory. The host lets a domain map only what was granted to it, while it stands.
 */
export class SimGnttab extends GnttabBase {
  readonly backend = 'sim' as const;
  declare readonly domid: number;
  readonly #hc: SimGnttabHostLike;
  readonly #n: Native;
  #hostGone = false;
  readonly #onHostClose = () => {
    this.#hostGone = true;
    this.markClosed();
  };

  constructor(n: Native, hc: SimGnttabHostLike) {
    super(hc.domid);
    this.#n = n;
    this.#hc = hc;
    hc.on('close', this.#onHostClose);
  }

  protected async doShare(grantee: number, count: number, readonly: boolean) {
    let r: { refs: number[]; path: string; offset: number };
    try {
      r = await this.#hc.shareGrant(grantee, count, { readonly });
    } catch (err) {
      throw this.#hostError(
        `share ${count} page(s) with domain ${grantee}`,
        err,
        { grantee },
        'share',
      );
    }
    let buffer: ArrayBuffer;
    try {
      buffer = this.#n.mapFile(r.path, r.offset, count * PAGE_SIZE, true);
    } catch (err) {
      await this.#hc.endGrant(r.refs).catch(() => {});
      throw backendError('map the shared pages', err, { grantee });
    }
    const refs = r.refs;
    return {
      buffer,
      refs,
      release: async () => {
        this.#n.unmap(buffer);
        if (this.#hostGone) return;
        try {
          await this.#hc.endGrant(refs);
        } catch (err) {
          // The host ended them itself when our connection closed.
          if (!this.#hostGone) throw this.#hostError('end', err, { refs: [...refs] });
        }
      },
    };
  }

  protected async doMap(domid: number, refs: readonly number[], writable: boolean): Promise<Made> {
    const what = `map grant(s) ${refs.join(',')} of domain ${domid}`;
    let pages: SimPageRef[];
    try {
      ({ pages } = await this.#hc.mapGrants(domid, refs, writable));
    } catch (err) {
      throw this.#hostError(what, err, { domid, refs: [...refs] });
    }
    const undo = () => this.#hc.unmapGrants(domid, refs).catch(() => {});
    let buffer: ArrayBuffer;
    try {
      buffer = this.#mapPages(what, pages, writable);
    } catch (err) {
      await undo();
      throw err;
    }
    return {
      buffer,
      release: async () => {
        this.#n.unmap(buffer);
        if (this.#hostGone) return;
        try {
          await this.#hc.unmapGrants(domid, refs);
        } catch (err) {
          if (!this.#hostGone) throw this.#hostError('unmap', err, { domid, refs: [...refs] });
        }
      },
    };
  }

  protected async doMapFrames(
    domid: number,
    frames: readonly number[],
    writable: boolean,
  ): Promise<Made> {
    const what = `map frame(s) ${frames.join(',')} of domain ${domid}`;
    let pages: SimPageRef[];
    try {
      ({ pages } = await this.#hc.mapForeignFrames(domid, frames, writable));
    } catch (err) {
      throw this.#hostError(what, err, { domid, frames: [...frames] }, 'frames');
    }
    const buffer = this.#mapPages(what, pages, writable);
    return {
      buffer,
      release: async () => {
        this.#n.unmap(buffer);
      },
    };
  }

  protected async doClose(): Promise<void> {
    this.#hc.off?.('close', this.#onHostClose);
  }

  #mapPages(what: string, pages: readonly SimPageRef[], writable: boolean): ArrayBuffer {
    const first = contiguous(pages);
    if (first === null) {
      throw new GnttabError(
        GnttabCode.NOT_CONTIGUOUS,
        `${what}: the pages lie in different page files of the simulated host; map them one at a time`,
        { details: { pages: pages.map((p) => ({ ...p })) } },
      );
    }
    try {
      return this.#n.mapFile(first.path, first.offset, pages.length * PAGE_SIZE, writable);
    } catch (err) {
      throw backendError(what, err);
    }
  }

  /** The simulated host's errno, as the code real Xen's answer maps to. */
  #hostError(
    what: string,
    err: unknown,
    details: Record<string, unknown>,
    kind: 'share' | 'grants' | 'frames' = 'grants',
  ): GnttabError {
    const errno = errnoOf(err);
    const message = err instanceof Error ? err.message : String(err);
    const typed = (code: GnttabCode, extra: Record<string, unknown> = {}) =>
      new GnttabError(code, `${what}: ${message}`, {
        cause: err,
        details: { ...details, errno: errno ?? null, ...extra },
      });
    if (errno === 'ECONNRESET') {
      this.#onHostClose();
      return typed(GnttabCode.CLOSED);
    }
    if (errno === 'ENOSPC') return typed(GnttabCode.NO_SPACE);
    if (kind === 'share') return backendError(what, err, details);
    if (kind === 'frames') {
      if (errno === 'EPERM' || errno === 'EACCES') return typed(GnttabCode.NOT_PRIVILEGED);
      if (errno === 'EINVAL' || errno === 'ENOENT' || errno === 'ESRCH') {
        return typed(GnttabCode.BAD_FRAME);
      }
      return backendError(what, err, details);
    }
    if (errno === 'EACCES') return typed(GnttabCode.NO_ACCESS, { reason: 'other-domain' });
    if (errno === 'ENOENT' || errno === 'ESRCH') {
      return typed(GnttabCode.NO_ACCESS, { reason: 'no-grant' });
    }
    if (errno === 'EPERM') return typed(GnttabCode.READ_ONLY, { reason: 'read-only' });
    return backendError(what, err, details);
  }
}

/** Grants on the simulated host through the connection `hc` (a `HypervisorClient`). */
export function openSimGnttab(hc: SimGnttabHostLike): Gnttab {
  checkInteger('domid', hc.domid, 0, MAX_DOMID);
  const n = loadNative();
  if (n === null) {
    throw new GnttabError(
      GnttabCode.UNAVAILABLE,
      `the native addon is needed to map the simulated host's pages: ${nativeUnavailableReason()}`,
    );
  }
  return new SimGnttab(n, hc);
}
