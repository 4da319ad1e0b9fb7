import { closeSync, readSync, writeSync } from 'node:fs';
import { constants } from 'node:os';
import { native } from './native.js';
import type { TermSize } from './term-size.js';

/**
 * A pseudo-terminal from the native core. The master is read on the native core's poll thread
 * (readiness) and with non-blocking reads on the JS thread, never through a libuv stream.
 *
 * No output is lost when the program exits (node-pty #85, #140, #726, #674): reading the master
 * goes on after the child exited, until the kernel answers EIO, which it does only once every
 * slave fd is closed and every byte written to the slave has been read. `drained` resolves
 * then. (A libuv tty stream is not used because a read error destroys it together with output
 * it has read but not yet delivered to a paused consumer.) The slave fd we open is closed as
 * soon as the program runs (`closeSlave`), or EIO would never come.
 *
 * Pausing stops reading, so a slow console stalls the program instead of filling memory.
 * Writes that the pty cannot take at once (its input queue is full because the program does
 * not read) wait in a queue and are retried.
 */
export class Pty {
  readonly path: string;
  readonly #master: number;
  #slave: number | null;
  #watch = 0;
  #armed = false;
  #paused = true;
  #listener: ((chunk: Buffer) => void) | null = null;
  #drained = false;
  readonly #drainedPromise: Promise<void>;
  #resolveDrained!: () => void;
  #closed = false;
  #pendingWrites: Buffer[] = [];
  #writeTimer: NodeJS.Timeout | null = null;

  private constructor(pair: { master: number; slave: number; path: string }) {
    this.path = pair.path;
    this.#master = pair.master;
    this.#slave = pair.slave;
    this.#drainedPromise = new Promise((resolve) => {
      this.#resolveDrained = resolve;
    });
    const n = native();
    n.fdSetBlocking(pair.master, false);
    this.#watch = n.watchFd(pair.master, () => {
      this.#armed = false;
      this.#readSome();
    });
    this.#armed = true;
  }

  /** A new pty sized `size`. */
  static open(size: TermSize): Pty {
    return new Pty(native().ptyOpen(size.cols, size.rows));
  }

  /** The slave fd, for spawning a program on it. */
  get slaveFd(): number {
    if (this.#slave === null) throw new Error('the pty slave is already closed');
    return this.#slave;
  }

  /** Closes our slave fd (do it once the program holds its own). */
  closeSlave(): void {
    if (this.#slave === null) return;
    closeSync(this.#slave);
    this.#slave = null;
  }

  /** Output from the program (one listener); starts the flow. */
  onData(listener: (chunk: Buffer) => void): void {
    this.#listener = listener;
    this.resume();
  }

  /** Stops reading until `resume()`. */
  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    if (!this.#armed && !this.#drained && !this.#closed) {
      // Read now (something may be waiting that will not signal again).
      setImmediate(() => this.#readSome());
    }
  }

  /** Input for the program (ignored once closed or drained). */
  write(data: Uint8Array | string): void {
    if (this.#closed || this.#drained) return;
    const buf = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data);
    if (buf.length === 0) return;
    this.#pendingWrites.push(buf);
    if (this.#writeTimer === null) this.#flushWrites();
  }

  resize(size: TermSize): void {
    if (this.#closed) return;
    native().ptyResize(this.#master, size.cols, size.rows);
  }

  size(): TermSize {
    return native().ptyGetSize(this.#master);
  }

  /** Resolves once everything the program side wrote was read (EIO/EOF), or the pty was closed. */
  get drained(): Promise<void> {
    return this.#drainedPromise;
  }

  /** Closes the master (the program side gets a hangup) and our slave fd, if still open. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.closeSlave();
    if (this.#writeTimer) clearTimeout(this.#writeTimer);
    this.#writeTimer = null;
    for (const b of this.#pendingWrites) b.fill(0);
    this.#pendingWrites = [];
    native().unwatchFd(this.#watch);
    closeSync(this.#master);
    this.#setDrained();
  }

  /** Reads up to a budget, delivering each chunk; re-arms the watch unless paused or done. */
  #readSome(): void {
    if (this.#closed || this.#drained) return;
    for (let i = 0; i < 8 && !this.#paused; i++) {
      const buf = Buffer.allocUnsafe(READ_CHUNK);
      let n: number;
      try {
        n = readSync(this.#master, buf, 0, READ_CHUNK, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' || code === 'EINTR') break;
        // EIO: no slave open and nothing left. Anything else ends the pty too.
        this.#finishReading();
        return;
      }
      if (n === 0) {
        this.#finishReading();
        return;
      }
      this.#listener?.(buf.subarray(0, n));
      if (this.#closed) return;
    }
    if (!this.#paused && !this.#armed) {
      this.#armed = true;
      native().rearmFd(this.#watch);
    }
  }

  #finishReading(): void {
    native().unwatchFd(this.#watch);
    this.#setDrained();
  }

  #setDrained(): void {
    if (this.#drained) return;
    this.#drained = true;
    this.#resolveDrained();
  }

  #flushWrites(): void {
    this.#writeTimer = null;
    while (this.#pendingWrites.length > 0 && !this.#closed) {
      const head = this.#pendingWrites[0]!;
      let n: number;
      try {
        n = writeSync(this.#master, head);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' || code === 'EINTR') {
          // The program is not reading its input; try again shortly.
          this.#writeTimer = setTimeout(() => this.#flushWrites(), WRITE_RETRY_MS);
          return;
        }
        // EIO: the program side is gone; its input does not matter any more.
        for (const b of this.#pendingWrites) b.fill(0);
        this.#pendingWrites = [];
        return;
      }
      if (n >= head.length) {
        head.fill(0);
        this.#pendingWrites.shift();
      } else {
        this.#pendingWrites[0] = head.subarray(n);
      }
    }
  }
}

const READ_CHUNK = 16 * 1024;
const WRITE_RETRY_MS = 10;

export interface ExitInfo {
  exitCode: number | null;
  /** The signal's name when a signal ended the program. */
  signal: NodeJS.Signals | null;
}

export interface SpawnOptions {
  /** Absolute path of the program. */
  file: string;
  /** argv, argv[0] included. */
  args: readonly string[];
  env: Readonly<Record<string, string>>;
  cwd?: string;
  /** Credentials to switch to (needs root); omitted: ours. */
  credentials?: { uid: number; gid: number; groups: readonly number[] };
}

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(
  Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]),
);

/** A program running on a pty as a session leader (its pid is also its process group). */
export class PtyProcess {
  readonly pid: number;
  readonly exited: Promise<ExitInfo>;
  #exit: ExitInfo | null = null;

  private constructor(pid: number, pidfd: number) {
    this.pid = pid;
    this.exited = new Promise((resolve) => {
      const n = native();
      const finish = (r: { exitCode: number | null; signal: number | null }) => {
        this.#exit = {
          exitCode: r.exitCode,
          signal: r.signal === null ? null : (SIGNAL_NAMES.get(r.signal) ?? null),
        };
        resolve(this.#exit);
      };
      if (pidfd >= 0) {
        const id = n.watchFd(pidfd, () => {
          const r = n.childReap(pid, false);
          if (r === null) {
            n.rearmFd(id);
            return;
          }
          n.unwatchFd(id);
          closeSync(pidfd);
          finish(r);
        });
      } else {
        // No pidfd (Linux < 5.3 or a sandbox): ask a few times a second.
        const timer = setInterval(() => {
          const r = n.childReap(pid, false);
          if (r === null) return;
          clearInterval(timer);
          finish(r);
        }, 100);
      }
    });
  }

  /** Starts `options.file` on `pty` as a session leader with the pty as controlling terminal. */
  static spawn(pty: Pty, options: SpawnOptions): PtyProcess {
    const env = Object.entries(options.env).map(([k, v]) => `${k}=${v}`);
    const c = options.credentials;
    const { pid, pidfd } = native().ptySpawn(
      pty.slaveFd,
      options.file,
      options.args,
      env,
      options.cwd ?? null,
      c ? c.uid : null,
      c ? c.gid : null,
      c ? c.groups : null,
    );
    return new PtyProcess(pid, pidfd);
  }

  /** How it ended, once it did. */
  get exit(): ExitInfo | null {
    return this.#exit;
  }

  /** Signals the program's whole process group (the session's foreground job included). */
  signalGroup(signal: NodeJS.Signals): void {
    if (this.#exit) return;
    try {
      process.kill(-this.pid, signal);
    } catch {
      // Already gone.
    }
  }
}
