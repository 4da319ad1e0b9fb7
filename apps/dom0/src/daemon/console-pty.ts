import { closeSync, readSync, writeSync } from 'node:fs';
import { requireNative } from '@xencons/native';

const READ_CHUNK = 4096;
const POLLIN = 0x1;
const POLLOUT = 0x4;

/**
 * The pty a console is published on, as xenconsoled makes it: a pair in raw mode whose slave
 * path goes to `console/tty`, so Xen's own `xenconsole` and `xl console` attach to it. We keep
 * the slave open for the console's lifetime (the master would read EIO with no client).
 *
 * Guest output written here is best effort, like any viewer: when no client reads the slave,
 * at most `maxQueue` bytes wait and the oldest are dropped (counted in `dropped`), so a pty with
 * nobody on it never holds the guest back or grows without bound. A full pty is waited on with
 * POLLOUT on the native poll thread: no timer, no retries, nothing runs until a client reads.
 */
export class ConsolePty {
  readonly path: string;
  /** Guest output dropped because no one read the pty. */
  dropped = 0;
  private readonly master: number;
  private slave: number | null;
  private readonly watch: number;
  private readonly maxQueue: number;
  private queue: Buffer[] = [];
  private queued = 0;
  /** The last write found the pty full: output waits for POLLOUT. */
  private full = false;
  private listener: ((bytes: Buffer) => void) | null = null;
  private paused = false;
  /** What the watch is armed for (0: disarmed, after it fired). */
  private armed = POLLIN;
  private closed = false;

  private constructor(pair: { master: number; slave: number; path: string }, maxQueue: number) {
    const native = requireNative();
    this.path = pair.path;
    this.master = pair.master;
    this.slave = pair.slave;
    this.maxQueue = maxQueue;
    native.fdSetBlocking(pair.master, false);
    this.watch = native.watchFd(pair.master, (events) => {
      this.armed = 0;
      if (events & POLLOUT) {
        this.full = false;
        this.flush();
      }
      if (events & ~POLLOUT) this.readSome();
      this.arm();
    });
    native.unrefFd(this.watch);
  }

  /** Opens a raw pty pair (cfmakeraw on the slave, as xenconsoled does). */
  static open(maxQueue = 64 * 1024): ConsolePty {
    const native = requireNative();
    const pair = native.ptyOpen(80, 25);
    try {
      native.ttyMakeRaw(pair.slave);
    } catch (error) {
      closeSync(pair.master);
      closeSync(pair.slave);
      throw error;
    }
    return new ConsolePty(pair, maxQueue);
  }

  /** Keystrokes from whoever has the slave open (one listener). */
  onInput(listener: (bytes: Buffer) => void): void {
    this.listener = listener;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused || this.closed) return;
    this.paused = false;
    setImmediate(() => this.readSome());
  }

  /** Guest output for the pty client. */
  write(bytes: Uint8Array): void {
    if (this.closed || bytes.length === 0) return;
    this.queue.push(Buffer.from(bytes));
    this.queued += bytes.length;
    while (this.queued > this.maxQueue && this.queue.length > 0) {
      const head = this.queue[0] as Buffer;
      const excess = this.queued - this.maxQueue;
      if (head.length <= excess) {
        this.queue.shift();
        this.queued -= head.length;
        this.dropped += head.length;
      } else {
        this.queue[0] = head.subarray(excess);
        this.queued -= excess;
        this.dropped += excess;
      }
    }
    if (!this.full) this.flush();
  }

  /** Arms the watch for what is wanted now: input unless paused, room while output waits. */
  private arm(): void {
    if (this.closed) return;
    const want = (this.paused ? 0 : POLLIN) | (this.full ? POLLOUT : 0);
    if (want === 0 || want === this.armed) return;
    this.armed = want;
    requireNative().rearmFd(this.watch, want);
  }

  private flush(): void {
    while (this.queue.length > 0 && !this.closed) {
      const head = this.queue[0] as Buffer;
      let n: number;
      try {
        n = writeSync(this.master, head);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EINTR') continue;
        if (code === 'EAGAIN') {
          this.full = true;
          this.arm();
          return;
        }
        this.queue = [];
        this.queued = 0;
        return;
      }
      this.queued -= n;
      if (n >= head.length) this.queue.shift();
      else this.queue[0] = head.subarray(n);
    }
  }

  private readSome(): void {
    if (this.closed) return;
    for (let i = 0; i < 8 && !this.paused; i++) {
      const buffer = Buffer.allocUnsafe(READ_CHUNK);
      let n: number;
      try {
        n = readSync(this.master, buffer, 0, READ_CHUNK, null);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' || code === 'EINTR') break;
        return; // EIO cannot happen while we hold the slave; anything else: stop reading
      }
      if (n === 0) return;
      this.listener?.(buffer.subarray(0, n));
    }
    this.arm();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const native = requireNative();
    native.unwatchFd(this.watch);
    closeSync(this.master);
    if (this.slave !== null) closeSync(this.slave);
    this.slave = null;
  }
}
