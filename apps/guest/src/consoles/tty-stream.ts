import { closeSync, constants as fsConstants, openSync, readSync, writeSync } from 'node:fs';
import { Duplex } from 'node:stream';
import { requireNative } from '@xencons/native';

const READ_CHUNK = 16 * 1024;
const WRITE_RETRY_MS = 10;

/** Errors of `open` that mean "no such console (now)", not a problem worth reporting. */
export const ABSENT_CONSOLE_ERRORS = new Set(['ENODEV', 'ENXIO', 'ENOENT', 'EIO']);

export interface TtyStreamStats {
  bytesIn: number;
  bytesOut: number;
  /** Bytes written by the agent that the tty has not taken yet. */
  queued: number;
}

/**
 * A tty device (`/dev/hvc1`, a serial port, a pty slave) as a Duplex: opened without becoming
 * our controlling terminal (O_NOCTTY, so a hangup never signals the agent), put in raw mode
 * (cfmakeraw: no echo, no line editing, no signal keys, no output processing), and read with
 * non-blocking reads when the native core's poll thread says it is readable, not through a libuv
 * tty or the thread pool. A console that dom0 does not drain makes only its own writes wait (a
 * blocking write would stall every console). A hangup (the hvc was removed, the pty master
 * closed) ends the stream. `close()` restores the tty's settings if it is still there.
 */
export class TtyStream extends Duplex {
  readonly path: string;
  readonly #fd: number;
  readonly #watch: number;
  readonly #saved: Buffer | null;
  #armed = true;
  #reading = false;
  #closed = false;
  #pending: { chunk: Buffer; callback: (error?: Error | null) => void } | null = null;
  #writeTimer: NodeJS.Timeout | null = null;
  bytesIn = 0;
  bytesOut = 0;

  /** Opens `path`; throws the open's errno error (`ENODEV` for an hvc with no console behind it). */
  constructor(path: string, options: { raw?: boolean } = {}) {
    super({ allowHalfOpen: false });
    this.path = path;
    const n = requireNative();
    const fd = openSync(
      path,
      fsConstants.O_RDWR | fsConstants.O_NOCTTY | fsConstants.O_NONBLOCK, // libuv adds O_CLOEXEC
    );
    this.#fd = fd;
    let saved: Buffer | null = null;
    try {
      if (options.raw !== false) saved = n.ttyMakeRaw(fd);
      this.#watch = n.watchFd(fd, () => {
        this.#armed = false;
        this.#readSome();
      });
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    this.#saved = saved;
    this.on('error', () => {});
  }

  stats(): TtyStreamStats {
    return {
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      queued: this.#pending?.chunk.length ?? 0,
    };
  }

  override _read(): void {
    this.#reading = true;
    if (!this.#armed) setImmediate(() => this.#readSome());
  }

  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    this.#pending = { chunk, callback };
    this.#flush();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#shut();
    callback(error);
  }

  #readSome(): void {
    if (this.#closed) return;
    const n = requireNative();
    for (let i = 0; i < 8 && this.#reading; i++) {
      const buf = Buffer.allocUnsafe(READ_CHUNK);
      let got: number;
      try {
        got = readSync(this.#fd, buf, 0, READ_CHUNK, null);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' || code === 'EINTR') break;
        this.#hangup(); // EIO after a hangup, or anything else: the console is gone for us
        return;
      }
      if (got === 0) {
        this.#hangup();
        return;
      }
      this.bytesIn += got;
      this.#reading = this.push(buf.subarray(0, got));
    }
    if (this.#reading && !this.#armed && !this.#closed) {
      this.#armed = true;
      n.rearmFd(this.#watch);
    }
  }

  #flush(): void {
    this.#writeTimer = null;
    const pending = this.#pending;
    if (pending === null) return;
    while (pending.chunk.length > 0) {
      if (this.#closed) {
        this.#pending = null;
        pending.callback(new Error(`${this.path} is closed`));
        return;
      }
      let n: number;
      try {
        n = writeSync(this.#fd, pending.chunk);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' || code === 'EINTR') {
          // dom0 is not draining this console: wait for it, alone.
          this.#writeTimer = setTimeout(() => this.#flush(), WRITE_RETRY_MS);
          return;
        }
        this.#pending = null;
        pending.callback(error as Error);
        this.#hangup();
        return;
      }
      this.bytesOut += n;
      pending.chunk = pending.chunk.subarray(n);
    }
    this.#pending = null;
    pending.callback();
  }

  #hangup(): void {
    if (this.#closed) return;
    this.push(null);
    this.#shut();
    this.destroy();
  }

  #shut(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#writeTimer) clearTimeout(this.#writeTimer);
    this.#writeTimer = null;
    const n = requireNative();
    n.unwatchFd(this.#watch);
    if (this.#saved !== null) {
      try {
        n.ttyRestore(this.#fd, this.#saved);
      } catch {
        // Hung up: nothing to restore.
      }
    }
    try {
      closeSync(this.#fd);
    } catch {
      // already gone
    }
    const pending = this.#pending;
    this.#pending = null;
    pending?.callback(new Error(`${this.path} is closed`));
  }
}
