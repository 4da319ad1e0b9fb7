import * as fs from 'node:fs';
import { simPaths } from './paths.js';

const ONE = Buffer.from([1]);
const WRITE_FLAGS = fs.constants.O_WRONLY | fs.constants.O_NONBLOCK;

/**
 * Rings event-channel handles: one byte into the handle's FIFO, written synchronously without
 * blocking. A full FIFO already holds an unread ring, a FIFO without a reader belongs to a handle
 * that is not listening yet (it scans when it starts) or is gone: all three are fine to ignore,
 * because the pending bit, not the byte, carries the event.
 */
export class Doorbells {
  private readonly fds = new Map<number, number>();

  constructor(private readonly dir: string) {}

  ring(handle: number): void {
    let fd = this.fds.get(handle);
    if (fd === undefined) {
      try {
        fd = fs.openSync(simPaths.doorbell(this.dir, handle), WRITE_FLAGS);
      } catch {
        return; // ENOENT (closed) or ENXIO (no reader yet)
      }
      this.fds.set(handle, fd);
    }
    try {
      fs.writeSync(fd, ONE, 0, 1);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EAGAIN') return;
      this.forget(handle); // EPIPE: the reader went away
    }
  }

  forget(handle: number): void {
    const fd = this.fds.get(handle);
    if (fd === undefined) return;
    this.fds.delete(handle);
    try {
      fs.closeSync(fd);
    } catch {
      // already closed
    }
  }

  close(): void {
    for (const handle of [...this.fds.keys()]) this.forget(handle);
  }
}
