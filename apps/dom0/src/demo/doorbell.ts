import type { Duplex } from 'node:stream';

/**
 * The demo's stand-in for an event channel: one byte on a socketpair between the two processes
 * means "look at the page". The real event channel binding arrives with @xencons/evtchn (issue 5).
 */
export class Doorbell {
  readonly #socket: Duplex;

  constructor(socket: Duplex, onRing: () => void) {
    this.#socket = socket;
    socket.on('data', () => onRing());
    // The peer going away (EPIPE, ECONNRESET) is seen through its process exiting; the doorbell
    // has nothing to add.
    socket.on('error', () => {});
  }

  notify(): void {
    if (!this.#socket.destroyed && this.#socket.writable) this.#socket.write(Buffer.of(1));
  }

  close(): void {
    this.#socket.destroy();
  }
}
