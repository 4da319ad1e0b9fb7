import {
  closeSync,
  constants,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  writeSync,
} from 'node:fs';
import { Duplex } from 'node:stream';
import { requireNative } from '@xencons/native';

const READ_CHUNK = 4096;
const RETRY_MS = 10;

/**
 * A console reached through someone else's pty: on real Xen with xenconsoled running, it owns
 * the primary console's ring and publishes a pty in `console/tty`; the daemon opens that pty as
 * a client (as `xenconsole` does, raw) so logs, viewers and replay still work without a second
 * consumer of the ring. Reading stops while the reader is paused (xenconsoled then buffers,
 * under its own `limit` policy).
 */
export class PtyClientStream extends Duplex {
  readonly path: string;
  private readonly fd: number;
  private readonly watch: number;
  private armed = true;
  private wanted = false;
  private pendingWrite: { chunk: Buffer; callback: (error?: Error | null) => void } | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(path: string) {
    super({ allowHalfOpen: false });
    this.path = path;
    this.fd = openSync(path, constants.O_RDWR | constants.O_NOCTTY | constants.O_NONBLOCK);
    const native = requireNative();
    try {
      native.ttyMakeRaw(this.fd);
    } catch {
      // leave the mode as it is: xenconsoled makes it raw already
    }
    this.watch = native.watchFd(this.fd, () => {
      this.armed = false;
      this.readSome();
    });
    native.unrefFd(this.watch);
  }

  override _read(): void {
    this.wanted = true;
    this.readSome();
  }

  private readSome(): void {
    if (this.destroyed) return;
    while (this.wanted) {
      const buffer = Buffer.allocUnsafe(READ_CHUNK);
      let n: number;
      try {
        n = readSync(this.fd, buffer, 0, READ_CHUNK, null);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' || code === 'EINTR') break;
        this.destroy(error as Error); // EIO: xenconsoled closed its side
        return;
      }
      if (n === 0) {
        this.push(null);
        return;
      }
      this.wanted = this.push(buffer.subarray(0, n));
    }
    if (!this.armed && !this.destroyed) {
      this.armed = true;
      requireNative().rearmFd(this.watch);
    }
  }

  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    this.pendingWrite = { chunk, callback };
    this.flush();
  }

  private flush(): void {
    this.timer = null;
    const pending = this.pendingWrite;
    if (!pending || this.destroyed) return;
    while (pending.chunk.length > 0) {
      let n: number;
      try {
        n = writeSync(this.fd, pending.chunk);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' || code === 'EINTR') {
          this.timer = setTimeout(() => this.flush(), RETRY_MS);
          return;
        }
        this.pendingWrite = null;
        pending.callback(error as Error);
        return;
      }
      pending.chunk = pending.chunk.subarray(n);
    }
    this.pendingWrite = null;
    pending.callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.timer) clearTimeout(this.timer);
    requireNative().unwatchFd(this.watch);
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
    callback(error);
  }
}

/** True when a process named `xenconsoled` runs on this machine (it owns primary consoles' rings). */
export function xenconsoledRunning(): boolean {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return false;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === 'xenconsoled') return true;
    } catch {
      // gone meanwhile
    }
  }
  return false;
}
