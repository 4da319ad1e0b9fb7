import type {
  ForeignMapping,
  Gnttab,
  GnttabBackend,
  MapOptions,
  SharedPages,
  ShareOptions,
} from './gnttab.js';
import { PAGE_SIZE } from './gnttab.js';
import {
  backendError,
  checkInteger,
  checkList,
  closedError,
  MAX_DOMID,
  MAX_PAGES,
  MAX_REF,
} from './gnttab-errors.js';

/** What a backend hands back for a share or a mapping: the pages and how to let go of them. */
export interface Made {
  readonly buffer: ArrayBuffer;
  /** Unmaps (and for shares ends the grants). Called at most once. */
  release(): Promise<void>;
}

/** Pages with a one-shot release: the part shares and mappings have in common. */
abstract class Region {
  readonly buffer: ArrayBuffer;
  readonly bytes: Uint8Array;
  readonly pages: readonly Uint8Array[];
  #releasing: Promise<void> | null = null;
  readonly #release: () => Promise<void>;

  constructor(made: Made, onReleased: () => void) {
    this.buffer = made.buffer;
    this.bytes = new Uint8Array(made.buffer);
    const count = Math.floor(made.buffer.byteLength / PAGE_SIZE);
    this.pages = Object.freeze(
      Array.from(
        { length: count },
        (_, i) => new Uint8Array(made.buffer, i * PAGE_SIZE, PAGE_SIZE),
      ),
    );
    this.#release = async () => {
      try {
        await made.release();
      } finally {
        onReleased();
      }
    };
  }

  protected get released(): boolean {
    return this.#releasing !== null;
  }

  protected releaseOnce(): Promise<void> {
    this.#releasing ??= this.#release();
    return this.#releasing;
  }
}

class Shared extends Region implements SharedPages {
  readonly grantee: number;
  readonly refs: readonly number[];
  readonly readonly: boolean;

  constructor(
    grantee: number,
    refs: readonly number[],
    ro: boolean,
    made: Made,
    onEnded: () => void,
  ) {
    super(made, onEnded);
    this.grantee = grantee;
    this.refs = Object.freeze([...refs]);
    this.readonly = ro;
  }

  get ended(): boolean {
    return this.released;
  }

  end(): Promise<void> {
    return this.releaseOnce();
  }
}

class Mapping extends Region implements ForeignMapping {
  readonly domid: number;
  readonly kind: 'grant' | 'frame';
  readonly refs: readonly number[];
  readonly writable: boolean;

  constructor(
    domid: number,
    kind: 'grant' | 'frame',
    refs: readonly number[],
    writable: boolean,
    made: Made,
    onUnmapped: () => void,
  ) {
    super(made, onUnmapped);
    this.domid = domid;
    this.kind = kind;
    this.refs = Object.freeze([...refs]);
    this.writable = writable;
  }

  get mapped(): boolean {
    return !this.released;
  }

  unmap(): Promise<void> {
    return this.releaseOnce();
  }
}

/**
 * Argument checks, bookkeeping and close() for both backends; a backend implements the four
 * `do*` methods and throws GnttabErrors from them.
 */
export abstract class GnttabBase implements Gnttab {
  abstract readonly backend: GnttabBackend;
  readonly domid: number | null;
  #closed = false;
  #closing: Promise<void> | null = null;
  readonly #live = new Set<Shared | Mapping>();

  constructor(domid: number | null) {
    this.domid = domid;
  }

  get closed(): boolean {
    return this.#closed;
  }

  protected abstract doShare(
    grantee: number,
    count: number,
    readonly: boolean,
  ): Promise<Made & { refs: readonly number[] }>;
  protected abstract doMap(
    domid: number,
    refs: readonly number[],
    writable: boolean,
  ): Promise<Made>;
  protected abstract doMapFrames(
    domid: number,
    frames: readonly number[],
    writable: boolean,
  ): Promise<Made>;
  protected abstract doClose(): Promise<void>;

  async share(grantee: number, options: ShareOptions = {}): Promise<SharedPages> {
    this.#check('share');
    checkInteger('grantee', grantee, 0, MAX_DOMID);
    const count = options.count ?? 1;
    checkInteger('count', count, 1, MAX_PAGES);
    const ro = options.readonly === true;
    const made = await this.doShare(grantee, count, ro);
    const shared = new Shared(grantee, made.refs, ro, made, () => this.#live.delete(shared));
    return this.#keep('share', shared);
  }

  async map(
    domid: number,
    refs: readonly number[],
    options: MapOptions = {},
  ): Promise<ForeignMapping> {
    this.#check('map');
    checkInteger('domid', domid, 0, MAX_DOMID);
    checkList('refs', refs, MAX_REF);
    const writable = options.writable !== false;
    const made = await this.doMap(domid, refs, writable);
    const m = new Mapping(domid, 'grant', refs, writable, made, () => this.#live.delete(m));
    return this.#keep('map', m);
  }

  async mapFrames(
    domid: number,
    frames: readonly number[],
    options: MapOptions = {},
  ): Promise<ForeignMapping> {
    this.#check('mapFrames');
    checkInteger('domid', domid, 0, MAX_DOMID);
    checkList('frames', frames, Number.MAX_SAFE_INTEGER);
    const writable = options.writable !== false;
    const made = await this.doMapFrames(domid, frames, writable);
    const m = new Mapping(domid, 'frame', frames, writable, made, () => this.#live.delete(m));
    return this.#keep('mapFrames', m);
  }

  close(): Promise<void> {
    this.#closing ??= this.#closeAll();
    return this.#closing;
  }

  /** Marks the handle closed without waiting (the connection underneath is gone). */
  protected markClosed(): void {
    this.#closed = true;
  }

  async #closeAll(): Promise<void> {
    this.#closed = true;
    let first: unknown = null;
    for (const region of [...this.#live]) {
      try {
        await ('end' in region ? region.end() : region.unmap());
      } catch (err) {
        first ??= err;
      }
    }
    try {
      await this.doClose();
    } catch (err) {
      first ??= err;
    }
    if (first !== null) throw backendError('close', first);
  }

  #check(op: string): void {
    if (this.#closed) throw closedError(op);
  }

  async #keep<T extends Shared | Mapping>(op: string, region: T): Promise<T> {
    if (this.#closed) {
      // Closed while the backend worked: let go of what it made.
      await ('end' in region ? region.end() : region.unmap()).catch(() => {});
      throw closedError(op);
    }
    this.#live.add(region);
    return region;
  }
}
