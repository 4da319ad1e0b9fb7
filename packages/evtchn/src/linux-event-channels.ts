import { closeSync, constants, openSync } from 'node:fs';
import { loadNative, type NativeBinding, nativeUnavailableReason } from '@xencons/native';
import type { EventChannels, NativeWake } from './event-channels.js';
import { EventChannelsBase } from './event-channels-base.js';
import { backendError, EvtchnCode, EvtchnError } from './evtchn-errors.js';

/** Where Linux exposes event channels to user space. */
export const LINUX_EVTCHN_DEVICE = '/dev/xen/evtchn';

export interface LinuxEventChannelsOptions {
  /** The device to open; defaults to {@link LINUX_EVTCHN_DEVICE}. */
  readonly device?: string;
  /**
   * A handle for a native waiter: the fd is not watched in JS (no deliveries), `nativeWake`
   * gives it to whoever reads it.
   */
  readonly native?: boolean;
}

/**
 * `/dev/xen/evtchn` through the native core. The kernel does the masking: a port that fires is
 * disabled and queued on the fd; writing the port number back (`unmask`) re-enables it, and the
 * kernel re-delivers it if it fired meanwhile. The fd is watched on the addon's poll thread;
 * each wake-up drains every queued port, then re-arms the watch.
 */
class LinuxEventChannels extends EventChannelsBase {
  readonly backend = 'linux' as const;
  readonly #n: NativeBinding;
  readonly #fd: number;
  /** The poll-thread watch, or -1 on a native handle. */
  readonly #watch: number;
  readonly #device: string;
  readonly #pending = new Uint32Array(256);
  readonly nativeWake?: NativeWake;

  constructor(n: NativeBinding, fd: number, device: string, native: boolean) {
    super();
    this.#n = n;
    this.#fd = fd;
    this.#device = device;
    if (native) {
      this.#watch = -1;
      this.nativeWake = { kind: 'linux', fd };
    } else {
      this.#watch = n.watchFd(fd, () => this.#onReadable());
    }
  }

  /** Another open of the device, read by a native waiter (see `nativeWake`). */
  async openNativeHandle(): Promise<EventChannels> {
    return openLinuxEventChannels({ device: this.#device, native: true });
  }

  protected doAllocUnbound(remoteDomid: number): number {
    return this.#n.evtchnBindUnboundPort(this.#fd, remoteDomid);
  }

  protected doBindInterdomain(remoteDomid: number, remotePort: number): number {
    return this.#n.evtchnBindInterdomain(this.#fd, remoteDomid, remotePort);
  }

  protected doNotify(port: number): void {
    this.#n.evtchnNotify(this.#fd, port);
  }

  protected doUnmask(port: number): void {
    this.#n.evtchnUnmask(this.#fd, port);
  }

  protected doUnbind(port: number): void {
    this.#n.evtchnUnbind(this.#fd, port);
  }

  protected doClose(): void {
    // Before closing: epoll tracks the open file, not the number.
    if (this.#watch >= 0) this.#n.unwatchFd(this.#watch);
    closeSync(this.#fd);
  }

  ref(): void {
    if (!this.closed && this.#watch >= 0) this.#n.refFd(this.#watch);
  }

  unref(): void {
    if (!this.closed && this.#watch >= 0) this.#n.unrefFd(this.#watch);
  }

  #onReadable(): void {
    const n = this.#n;
    const buf = this.#pending;
    try {
      for (;;) {
        if (this.closed) return;
        const count = n.evtchnPending(this.#fd, buf);
        for (let i = 0; i < count; i++) this.deliver(buf[i]!);
        if (count < buf.length) break;
      }
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'EFBIG') {
        this.fail(backendError('reading pending events', err));
        return;
      }
      // The per-fd ring overflowed (it has room for one entry per bound port, so this should
      // not happen). Entries were lost: reset it and report every bound port once. A spurious
      // delivery is harmless; a lost one would hang its consumer.
      try {
        n.evtchnReset(this.#fd);
      } catch (resetErr) {
        this.fail(backendError('resetting after an overflow', resetErr));
        return;
      }
      for (const port of [...this.bound]) this.deliver(port);
    }
    if (!this.closed) n.rearmFd(this.#watch);
  }
}

/** Opens `/dev/xen/evtchn` (real Xen, Linux dom0 or guest). */
export function openLinuxEventChannels(options: LinuxEventChannelsOptions = {}): EventChannels {
  const device = options.device ?? LINUX_EVTCHN_DEVICE;
  const n = loadNative();
  if (n === null) {
    throw new EvtchnError(
      EvtchnCode.UNAVAILABLE,
      `the native addon is needed for ${device}: ${nativeUnavailableReason()}`,
      { details: { device } },
    );
  }
  let fd: number;
  try {
    // libuv opens with O_CLOEXEC.
    fd = openSync(device, constants.O_RDWR | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') {
      throw new EvtchnError(EvtchnCode.UNAVAILABLE, `${device} does not exist (not on Xen?)`, {
        cause: err,
        details: { device },
      });
    }
    throw backendError(`open ${device}`, err, { device });
  }
  try {
    return new LinuxEventChannels(n, fd, device, options.native === true);
  } catch (err) {
    closeSync(fd);
    throw backendError(`watch ${device}`, err, { device });
  }
}
