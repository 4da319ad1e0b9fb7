import { closeSync, constants, openSync, readFileSync } from 'node:fs';
import { loadNative, type NativeBinding, nativeUnavailableReason } from '@xencons/native';
import type { Gnttab } from './gnttab.js';
import { GnttabBase, type Made } from './gnttab-base.js';
import {
  backendError,
  checkInteger,
  errnoOf,
  GnttabCode,
  GnttabError,
  MAX_DOMID,
} from './gnttab-errors.js';

export const LINUX_GNTTAB_DEVICES = {
  gntdev: '/dev/xen/gntdev',
  gntalloc: '/dev/xen/gntalloc',
  privcmd: '/dev/xen/privcmd',
} as const;
type Device = keyof typeof LINUX_GNTTAB_DEVICES;

export interface LinuxGnttabOptions {
  /** Our domid, if known (0 in dom0); reported as `domid`, nothing depends on it. */
  readonly domid?: number;
  /** Device paths, for a privcmd fallback such as `/proc/xen/privcmd`. */
  readonly devices?: Partial<Record<Device, string>>;
  /**
   * Whether this domain is privileged (may map other domains' frames). Read from
   * `/proc/xen/capabilities` (`control_d` in dom0) when not given; only used to tell "not
   * privileged" from "no such frame", which Xen both answers with EPERM.
   */
  readonly privileged?: boolean;
}

type Native = Pick<NativeBinding, 'gntdevMap' | 'gntallocShare' | 'privcmdMapForeign' | 'unmap'>;

/** EINVAL from mmap of a gntdev range: Xen refused a grant (Linux folds every GNTST_* into it). */
const isGrantRefused = (err: unknown) =>
  errnoOf(err) === 'EINVAL' && (err as { syscall?: unknown }).syscall === 'mmap';

/**
 * Grants through the Linux Xen devices (real Xen; dom0 or a guest with the devices): gntalloc
 * shares, gntdev maps grants, privcmd maps frames. Each device is opened on first use and kept
 * until close; every mapping holds its own duplicate of the fd for its teardown.
 */
export class LinuxGnttab extends GnttabBase {
  readonly backend = 'linux' as const;
  readonly #n: Native;
  readonly #paths: Record<Device, string>;
  readonly #fds = new Map<Device, number>();
  #privileged: boolean | undefined;

  constructor(n: Native, options: LinuxGnttabOptions) {
    super(options.domid ?? null);
    this.#n = n;
    this.#paths = { ...LINUX_GNTTAB_DEVICES, ...options.devices };
    this.#privileged = options.privileged;
  }

  protected async doShare(grantee: number, count: number, readonly: boolean) {
    const fd = this.#fd('gntalloc');
    let r: { buffer: ArrayBuffer; refs: number[] };
    try {
      r = this.#n.gntallocShare(fd, grantee, count, !readonly);
    } catch (err) {
      throw this.#shareError(err, grantee, count);
    }
    return { buffer: r.buffer, refs: r.refs, release: this.#releaser(r.buffer, 'end') };
  }

  protected async doMap(domid: number, refs: readonly number[], writable: boolean): Promise<Made> {
    const fd = this.#fd('gntdev');
    let buffer: ArrayBuffer;
    try {
      buffer = this.#n.gntdevMap(fd, domid, refs, writable);
    } catch (err) {
      throw this.#mapError(err, fd, domid, refs, writable);
    }
    return { buffer, release: this.#releaser(buffer, 'unmap') };
  }

  protected async doMapFrames(
    domid: number,
    frames: readonly number[],
    writable: boolean,
  ): Promise<Made> {
    // privcmd takes domid_t (16 bits) and xen_pfn_t frames.
    const fd = this.#fd('privcmd');
    let buffer: ArrayBuffer;
    try {
      buffer = this.#n.privcmdMapForeign(fd, domid, frames, writable);
    } catch (err) {
      throw this.#frameError(err, domid, frames);
    }
    return { buffer, release: this.#releaser(buffer, 'unmap') };
  }

  protected async doClose(): Promise<void> {
    for (const fd of this.#fds.values()) closeSync(fd);
    this.#fds.clear();
  }

  #releaser(buffer: ArrayBuffer, op: string): () => Promise<void> {
    return async () => {
      try {
        this.#n.unmap(buffer);
      } catch (err) {
        // The view is gone either way (native unmaps before the teardown ioctl).
        throw backendError(op, err);
      }
    };
  }

  #fd(device: Device): number {
    const open = this.#fds.get(device);
    if (open !== undefined) return open;
    const path = this.#paths[device];
    let fd: number;
    try {
      // Node opens every fd close-on-exec.
      fd = openSync(path, constants.O_RDWR);
    } catch (err) {
      const errno = errnoOf(err);
      if (errno === 'ENOENT' || errno === 'ENODEV' || errno === 'ENXIO') {
        throw new GnttabError(GnttabCode.UNAVAILABLE, `${path} does not exist (not on Xen?)`, {
          cause: err,
          details: { device: path, errno },
        });
      }
      if (errno === 'EACCES' || errno === 'EPERM') {
        throw new GnttabError(
          GnttabCode.NOT_PRIVILEGED,
          `cannot open ${path}: ${errno} (the Xen devices need root)`,
          { cause: err, details: { device: path, errno } },
        );
      }
      throw backendError(`open ${path}`, err, { device: path });
    }
    this.#fds.set(device, fd);
    return fd;
  }

  #shareError(err: unknown, grantee: number, count: number): GnttabError {
    const errno = errnoOf(err);
    // gntalloc: ENOSPC past its module-wide `limit`, ENOMEM when no grant ref is free.
    const code =
      errno === 'ENOSPC' || errno === 'ENOMEM' ? GnttabCode.NO_SPACE : GnttabCode.BACKEND;
    return backendError(`share ${count} page(s) with domain ${grantee}`, err, { grantee }, code);
  }

  #mapError(
    err: unknown,
    fd: number,
    domid: number,
    refs: readonly number[],
    writable: boolean,
  ): GnttabError {
    const what = `map grant(s) ${refs.join(',')} of domain ${domid}`;
    const details = { domid, refs: [...refs], errno: errnoOf(err) ?? null };
    if (isGrantRefused(err)) {
      // Xen's status is lost on the way (gntdev turns it into EINVAL). A writable map that a
      // read-only map of the same grants survives was refused for being writable.
      if (writable && this.#mapsReadOnly(fd, domid, refs)) {
        return new GnttabError(
          GnttabCode.READ_ONLY,
          `${what}: granted read-only; map it with writable: false`,
          { cause: err, details: { ...details, reason: 'read-only' } },
        );
      }
      return new GnttabError(
        GnttabCode.NO_ACCESS,
        `${what}: refused by Xen (not granted to this domain, unknown, or ended)`,
        { cause: err, details: { ...details, reason: 'unspecified' } },
      );
    }
    const errno = errnoOf(err);
    if (errno === 'ENOMEM' || errno === 'ENOSPC') {
      return backendError(what, err, details, GnttabCode.NO_SPACE);
    }
    return backendError(what, err, details);
  }

  #mapsReadOnly(fd: number, domid: number, refs: readonly number[]): boolean {
    let probe: ArrayBuffer;
    try {
      probe = this.#n.gntdevMap(fd, domid, refs, false);
    } catch {
      return false;
    }
    try {
      this.#n.unmap(probe);
    } catch {
      // Unmapped anyway; a failing UNMAP_GRANT_REF only leaks the gntdev slot.
    }
    return true;
  }

  #frameError(err: unknown, domid: number, frames: readonly number[]): GnttabError {
    const what = `map frame(s) ${frames.join(',')} of domain ${domid}`;
    const errno = errnoOf(err);
    const details = { domid, frames: [...frames], errno: errno ?? null };
    // Xen answers EPERM both to an unprivileged caller and to dom0 naming a frame the domain
    // does not own (it is then treated as I/O memory the domain may not map).
    if ((errno === 'EPERM' || errno === 'EACCES') && !this.#isPrivileged()) {
      return new GnttabError(
        GnttabCode.NOT_PRIVILEGED,
        `${what}: ${errno}: only a privileged domain may map another domain's frames`,
        { cause: err, details },
      );
    }
    if (
      errno === 'EPERM' ||
      errno === 'EINVAL' ||
      errno === 'ESRCH' ||
      errno === 'ENOENT' ||
      errno === 'EFAULT'
    ) {
      return new GnttabError(GnttabCode.BAD_FRAME, `${what}: ${errno}: no such frame or domain`, {
        cause: err,
        details,
      });
    }
    return backendError(what, err, details);
  }

  #isPrivileged(): boolean {
    if (this.#privileged === undefined) {
      try {
        this.#privileged = readFileSync('/proc/xen/capabilities', 'utf8').includes('control_d');
      } catch {
        this.#privileged = false;
      }
    }
    return this.#privileged;
  }
}

/** Opens the Linux Xen grant devices (lazily: each on first use). */
export function openLinuxGnttab(options: LinuxGnttabOptions = {}): Gnttab {
  if (options.domid !== undefined) checkInteger('domid', options.domid, 0, MAX_DOMID);
  const n = loadNative();
  if (n === null) {
    throw new GnttabError(
      GnttabCode.UNAVAILABLE,
      `the native addon is needed for the Xen grant devices: ${nativeUnavailableReason()}`,
    );
  }
  return new LinuxGnttab(n, options);
}
