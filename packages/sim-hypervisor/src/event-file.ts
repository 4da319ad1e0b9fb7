import * as fs from 'node:fs';
import { requireNative } from '@xencons/native';
import { SimHypervisorError } from './errors.js';

/**
 * One domain's event-channel state in shared memory, the simulator's `shared_info`: the pending
 * bit of every port, and two tables only the hypervisor writes. `route[p]` says where a notify on
 * local port `p` goes (`(remoteDomid + 1) << 16 | remotePort`, 0 when `p` is not connected), and
 * `attach[p]` which handle (process) receives the events of `p` (0 when none yet).
 *
 * A notifier sets the remote pending bit first and reads `attach` second; the hypervisor writes
 * `attach` first and rings the new handle's doorbell second. Every access is a seq_cst `Atomics`
 * operation, so a notify racing an attach is delivered by one side or the other, never lost.
 */
export const EVENT_FILE_MAGIC = 0x58455654; // 'XEVT'
export const EVENT_FILE_VERSION = 1;
/** Ports per domain: Xen's 2-level ABI for 64-bit guests. Port 0 is never valid. */
export const MAX_PORTS = 4096;
const HEADER_WORDS = { magic: 0, version: 1, domid: 2, dead: 3 } as const;
const PENDING_OFFSET = 512;
const ROUTE_OFFSET = 1024;
const ATTACH_OFFSET = ROUTE_OFFSET + MAX_PORTS * 4;
/**
 * A bit per port, set while a native waiter of that port (the ring pump of @xencons/native) is
 * awake: it clears the bit before its last look at the ring and its sleep, so a notifier that
 * finds the bit set may skip the doorbell. JS handles never set it; the hypervisor clears it
 * whenever a port is given to a handle, so a waiter that died awake cannot silence a port.
 */
const POLLING_OFFSET = ATTACH_OFFSET + MAX_PORTS * 4;
export const EVENT_FILE_SIZE = 36864; // POLLING_OFFSET + MAX_PORTS / 8, rounded up to whole pages
export const PENDING_WORDS = MAX_PORTS / 32;

export class EventFile {
  readonly path: string;
  private readonly buffer: ArrayBuffer;
  private readonly header: Int32Array;
  private readonly pendingWords: Int32Array;
  private readonly routes: Int32Array;
  private readonly attaches: Int32Array;
  private readonly polling: Int32Array;

  private constructor(path: string, buffer: ArrayBuffer) {
    this.path = path;
    this.buffer = buffer;
    this.header = new Int32Array(buffer, 0, 16);
    this.pendingWords = new Int32Array(buffer, PENDING_OFFSET, PENDING_WORDS);
    this.routes = new Int32Array(buffer, ROUTE_OFFSET, MAX_PORTS);
    this.attaches = new Int32Array(buffer, ATTACH_OFFSET, MAX_PORTS);
    this.polling = new Int32Array(buffer, POLLING_OFFSET, PENDING_WORDS);
  }

  /** Creates (or truncates) the file for `domid` and maps it. */
  static create(path: string, domid: number): EventFile {
    const fd = fs.openSync(
      path,
      fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_TRUNC,
      0o600,
    );
    try {
      fs.ftruncateSync(fd, EVENT_FILE_SIZE);
    } finally {
      fs.closeSync(fd);
    }
    const file = new EventFile(path, requireNative().mapFile(path, 0, EVENT_FILE_SIZE, true));
    Atomics.store(file.header, HEADER_WORDS.domid, domid);
    Atomics.store(file.header, HEADER_WORDS.version, EVENT_FILE_VERSION);
    Atomics.store(file.header, HEADER_WORDS.magic, EVENT_FILE_MAGIC);
    return file;
  }

  /** Maps an existing event file; ESRCH when it is missing or not an event file. */
  static open(path: string): EventFile {
    let buffer: ArrayBuffer;
    try {
      buffer = requireNative().mapFile(path, 0, EVENT_FILE_SIZE, true);
    } catch (cause) {
      throw new SimHypervisorError('ESRCH', `no such domain event file: ${path}`, { cause });
    }
    const file = new EventFile(path, buffer);
    if (Atomics.load(file.header, HEADER_WORDS.magic) !== EVENT_FILE_MAGIC) {
      file.unmap();
      throw new SimHypervisorError('ESRCH', `not a domain event file: ${path}`);
    }
    return file;
  }

  get domid(): number {
    return Atomics.load(this.header, HEADER_WORDS.domid);
  }

  /** Set by the hypervisor when the domain is destroyed; holders drop their mapping. */
  get dead(): boolean {
    return this.buffer.byteLength === 0 || Atomics.load(this.header, HEADER_WORDS.dead) !== 0;
  }

  markDead(): void {
    Atomics.store(this.header, HEADER_WORDS.dead, 1);
  }

  setPending(port: number): void {
    Atomics.or(this.pendingWords, port >>> 5, 1 << (port & 31));
  }

  isPending(port: number): boolean {
    return (Atomics.load(this.pendingWords, port >>> 5) & (1 << (port & 31))) !== 0;
  }

  /** Clears and returns the bits of word `index` selected by `mask` (one atomic AND). */
  takePending(index: number, mask: number): number {
    return Atomics.and(this.pendingWords, index, ~mask) & mask;
  }

  clearPending(port: number): void {
    Atomics.and(this.pendingWords, port >>> 5, ~(1 << (port & 31)));
  }

  /** Whether a native waiter of `port` is awake (a notify then needs no doorbell). */
  isPolling(port: number): boolean {
    return (Atomics.load(this.polling, port >>> 5) & (1 << (port & 31))) !== 0;
  }

  clearPolling(port: number): void {
    Atomics.and(this.polling, port >>> 5, ~(1 << (port & 31)));
  }

  route(port: number): number {
    return Atomics.load(this.routes, port) >>> 0;
  }

  setRoute(port: number, remoteDomid: number, remotePort: number): void {
    Atomics.store(this.routes, port, ((remoteDomid + 1) << 16) | remotePort);
  }

  clearRoute(port: number): void {
    Atomics.store(this.routes, port, 0);
  }

  attachedHandle(port: number): number {
    return Atomics.load(this.attaches, port) >>> 0;
  }

  setAttached(port: number, handle: number): void {
    Atomics.store(this.attaches, port, handle);
  }

  unmap(): void {
    requireNative().unmap(this.buffer);
  }
}

/** Splits a route word into the remote domain and port; null when not connected. */
export function decodeRoute(route: number): { domid: number; port: number } | null {
  if (route === 0) return null;
  return { domid: (route >>> 16) - 1, port: route & 0xffff };
}
