import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';

export interface ConsoleLogOptions {
  /** Prefix every line with `[YYYY-MM-DD HH:MM:SS] ` (local time), as xenconsoled `--timestamp`. */
  timestamps?: boolean;
  /** Rotate when the file would grow past this many bytes (0: never). */
  maxBytes?: number;
  /** Rotated files kept: `NAME.log.1` (newest) … `NAME.log.N`. */
  keep?: number;
}

const MAX_WRITE = 256 * 1024;

function stamp(date: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `[${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())} ${p(date.getHours())}:${p(date.getMinutes())}:${p(date.getSeconds())}] `;
}

/**
 * A guest's console log (`guest-NAME.log`), appended in order with one write in flight. `pending`
 * is what was accepted and not yet written, so the console can apply its overflow policy.
 * Size-based rotation, optional timestamps, `reopen()` for SIGHUP (after logrotate moved it).
 */
export class ConsoleLog extends EventEmitter<{ drain: []; error: [Error]; closed: [] }> {
  readonly path: string;
  private readonly timestamps: boolean;
  private readonly maxBytes: number;
  private readonly keep: number;
  private fd: number | null = null;
  private size = 0;
  private queue: Buffer[] = [];
  private queued = 0;
  private writing = false;
  private atLineStart = true;
  private lastWasNewline = false;
  private closed = false;
  private closing: Promise<void> | null = null;
  private reopenWanted = false;

  constructor(path: string, options: ConsoleLogOptions = {}) {
    super();
    this.path = path;
    this.timestamps = options.timestamps ?? false;
    this.maxBytes = options.maxBytes ?? 0;
    this.keep = options.keep ?? 5;
    this.open();
    if (this.timestamps) this.enqueue(Buffer.from(`${stamp(new Date())}Logfile Opened\n`));
  }

  /** Bytes accepted and not yet on disk. */
  get pending(): number {
    return this.queued;
  }

  private open(): void {
    this.fd = fs.openSync(this.path, 'a', 0o644);
    this.size = fs.fstatSync(this.fd).size;
  }

  /** Appends console output (timestamps added at line starts when enabled). */
  write(bytes: Uint8Array): void {
    if (this.closed || bytes.length === 0) return;
    this.enqueue(this.timestamps ? this.stampLines(bytes) : Buffer.from(bytes));
  }

  private stampLines(bytes: Uint8Array): Buffer {
    const parts: Buffer[] = [];
    let from = 0;
    const prefix = stamp(new Date());
    for (let i = 0; i < bytes.length; i++) {
      const byte = bytes[i];
      if (byte === 0x0d && this.lastWasNewline && i === from) {
        // xenconsoled drops a \r right after a \n
        from = i + 1;
        this.lastWasNewline = false;
        continue;
      }
      if (this.atLineStart) {
        parts.push(Buffer.from(prefix));
        this.atLineStart = false;
      }
      this.lastWasNewline = false;
      if (byte === 0x0a) {
        parts.push(Buffer.from(bytes.subarray(from, i + 1)));
        from = i + 1;
        this.atLineStart = true;
        this.lastWasNewline = true;
      }
    }
    if (from < bytes.length) parts.push(Buffer.from(bytes.subarray(from)));
    return Buffer.concat(parts);
  }

  private enqueue(buffer: Buffer): void {
    this.queue.push(buffer);
    this.queued += buffer.length;
    this.flush();
  }

  private flush(): void {
    if (this.writing || this.fd === null) return;
    if (this.reopenWanted) {
      this.reopenWanted = false;
      fs.closeSync(this.fd);
      this.open();
    }
    if (this.queue.length === 0) {
      if (this.closed) this.finish();
      return;
    }
    let chunk: Buffer;
    if (this.queue.length === 1 || (this.queue[0]?.length ?? 0) >= MAX_WRITE)
      chunk = this.queue.shift() as Buffer;
    else {
      const parts: Buffer[] = [];
      let total = 0;
      while (this.queue.length > 0 && total + (this.queue[0]?.length ?? 0) <= MAX_WRITE) {
        const part = this.queue.shift() as Buffer;
        parts.push(part);
        total += part.length;
      }
      chunk = Buffer.concat(parts);
    }
    if (this.maxBytes > 0 && this.size > 0 && this.size + chunk.length > this.maxBytes)
      this.rotate();
    this.writing = true;
    const fd = this.fd;
    const writeAll = (buffer: Buffer) => {
      fs.write(fd, buffer, 0, buffer.length, null, (error, written) => {
        if (error) {
          this.writing = false;
          this.emit('error', error);
          return;
        }
        this.size += written;
        if (written < buffer.length) {
          writeAll(buffer.subarray(written));
          return;
        }
        this.queued -= chunk.length;
        this.writing = false;
        if (this.queue.length === 0) this.emit('drain');
        this.flush();
      });
    };
    writeAll(chunk);
  }

  private rotate(): void {
    if (this.fd === null) return;
    fs.closeSync(this.fd);
    for (let k = this.keep - 1; k >= 1; k--) {
      const from = `${this.path}.${k}`;
      if (fs.existsSync(from)) fs.renameSync(from, `${this.path}.${k + 1}`);
    }
    if (this.keep > 0) fs.renameSync(this.path, `${this.path}.1`);
    else fs.truncateSync(this.path, 0);
    this.open();
  }

  /** Reopens the file by name (SIGHUP after an external rotation). */
  reopen(): void {
    this.reopenWanted = true;
    if (!this.writing) this.flush();
  }

  /** Writes what is queued, then closes the file. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    this.closing = new Promise((resolve) => {
      this.once('closed', () => resolve());
      if (!this.writing) this.flush();
    });
    return this.closing;
  }

  private finish(): void {
    if (this.fd !== null) {
      fs.closeSync(this.fd);
      this.fd = null;
    }
    this.emit('closed');
  }
}
