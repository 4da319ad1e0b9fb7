import type { Duplex } from 'node:stream';
import {
  XENSTORE_PAYLOAD_MAX,
  XS_HEADER_SIZE,
  XS_LITTLE_ENDIAN,
  XsDecoder,
  type XsMessage,
  XsType,
} from '@xencons/xenstore';
import type { Transaction } from './transaction.js';
import type { Watch } from './watches.js';

/** How a connection reached the daemon. */
export type ConnectionKind = 'socket' | 'domain';

export interface ConnectionInit {
  readonly kind: ConnectionKind;
  /** The peer's domain: 0 for the dom0 socket. */
  readonly domid: number;
  /** Privileged connections bypass permissions and quotas (dom0, the socket, `-p` domain). */
  readonly privileged: boolean;
  /** Names the peer in errors and traces, e.g. `socket#3` or `domain 5`. */
  readonly label: string;
  /** Bytes of replies and events that may wait for a slow reader before it is dropped. */
  readonly maxOutputBytes: number;
  /** Watch events older than this are discarded for unprivileged readers (0 = never). */
  readonly eventTimeoutMs: number;
  /**
   * Replies that may wait for the peer before no further requests are taken from it (the
   * `outstanding` quota of unprivileged domains); 0 for no limit.
   */
  readonly maxOutstanding?: number;
  /**
   * Bytes arrive through {@link Connection.receive} instead of the stream's `data` events (a
   * socket that reads into one shared buffer); the stream is still written, paused and resumed.
   */
  readonly fedByCaller?: boolean;
}

/** What the daemon does with a connection's traffic. */
export interface ConnectionHandler {
  message(conn: Connection, msg: XsMessage): void;
  closed(conn: Connection, reason: string): void;
  /** A reply or event leaves for the peer (for the trace file). */
  traceOut?(conn: Connection, bytes: Uint8Array): void;
}

let nextSeq = 0;

/**
 * One peer of the daemon over a byte stream: the unix socket for dom0 tools, or a guest's
 * xenstore ring wrapped as a Duplex. Requests are decoded with the 4096-byte limit checked at the
 * header; a protocol error closes this connection only. Replies and events queue in order; an
 * event identical to one still queued is dropped (cxenstored `send_event`). While the peer does
 * not read, no further requests are taken from it; if its queue still outgrows `maxOutputBytes`
 * (watch events keep coming) the connection is dropped.
 */
export class Connection {
  readonly seq = ++nextSeq;
  readonly kind: ConnectionKind;
  readonly domid: number;
  readonly privileged: boolean;
  readonly label: string;
  /** Implicit path for relative names (`get_implicit_path`). */
  readonly home: string;
  /** Watches keyed by `path\0token`. */
  readonly watches = new Map<string, Watch<Connection>>();
  readonly transactions = new Map<number, Transaction>();
  /** `next_transaction_id` of cxenstored: starts at 0, ids skip 0 and ids in use. */
  nextTxId = 0;
  closed = false;
  /** True when the daemon dropped this connection because its peer did not read. */
  dropped = false;
  /** Why the connection ended, once it has. */
  closeReason = '';

  readonly #stream: Duplex;
  readonly #handler: ConnectionHandler;
  readonly #decoder: XsDecoder;
  readonly #maxOutput: number;
  readonly #eventTimeoutMs: number;
  #queue: Buffer[] = [];
  /** For queued watch events: their `path\0token` key and expiry; null for replies. */
  #queueKeys: (string | null)[] = [];
  #queueTimes: number[] = [];
  #queuedBytes = 0;
  readonly #queuedEvents = new Map<string, number>();
  #flushScheduled = false;
  /** True while a chunk's requests are handled: its replies are written at the end. */
  #inData = false;
  #blocked = false;
  /** Statistics: watch events dropped as duplicates / after their timeout / over the quota. */
  coalescedEvents = 0;
  expiredEvents = 0;
  refusedEvents = 0;
  /** Bytes this connection's watches cost its domain's `memory` quota (path + token each). */
  watchBytes = 0;
  /**
   * Set for connections of domains bound by the `memory` quota: may `bytes` more be charged?
   * Watch events that may not are dropped, and longer replies become ENOMEM (cxenstored).
   */
  memoryGate: ((bytes: number) => boolean) | null = null;
  readonly #maxOutstanding: number;
  /** Replies queued or written but not yet taken by the stream (counted with a limit only). */
  #outstanding = 0;
  /** Requests decoded while the outstanding limit was reached, in order. */
  #held: XsMessage[] = [];
  #stalled = false;

  constructor(stream: Duplex, init: ConnectionInit, handler: ConnectionHandler) {
    this.kind = init.kind;
    this.domid = init.domid >>> 0;
    this.privileged = init.privileged;
    this.label = init.label;
    this.home = `/local/domain/${this.domid}`;
    this.#stream = stream;
    this.#handler = handler;
    this.#maxOutput = init.maxOutputBytes;
    this.#eventTimeoutMs = init.privileged ? 0 : init.eventTimeoutMs;
    this.#maxOutstanding = init.maxOutstanding ?? 0;
    // Payloads are views of the chunk: requests are handled before the chunk can change; the
    // few kept for later (held while stalled) are copied.
    this.#decoder = new XsDecoder({
      maxPayload: XENSTORE_PAYLOAD_MAX,
      peer: init.label,
      copyPayloads: false,
    });
    if (init.fedByCaller !== true) stream.on('data', (chunk: Buffer) => this.#onData(chunk));
    stream.on('end', () => this.close('peer closed the connection'));
    stream.on('close', () => this.close('stream closed'));
    stream.on('error', (err: Error) => this.close(`stream error: ${err.message}`));
    stream.on('drain', () => this.#onDrain());
  }

  /** Bytes waiting for the peer: this connection's queue plus the stream's own buffer. */
  get pendingBytes(): number {
    return this.#queuedBytes + this.#stream.writableLength;
  }

  /** Replies queued or not yet taken by the stream (tracked when there is a limit). */
  get outstanding(): number {
    return this.#outstanding;
  }

  /** Queues a reply whose payload is a latin1 string (each character one byte). */
  reply(type: number, reqId: number, txId: number, payload: string): void {
    // send_reply: only replies over the 16-byte default buffer are checked against the quota.
    if (payload.length > 16 && this.memoryGate !== null && !this.memoryGate(payload.length + 16)) {
      this.#push(frame(XsType.ERROR, reqId, txId, 'ENOMEM\0'), null);
      return;
    }
    this.#push(frame(type, reqId, txId, payload), null);
  }

  /** Queues a watch event unless an identical one is still queued (`@` events excepted). */
  event(path: string, token: string): void {
    if (this.closed) return;
    const payload = `${path}\0${token}\0`;
    if (payload.length > XENSTORE_PAYLOAD_MAX) return;
    const special = path.charCodeAt(0) === 64;
    if (!special && this.#queuedEvents.has(payload)) {
      this.coalescedEvents++;
      return;
    }
    if (this.memoryGate !== null && !this.memoryGate(payload.length + 16)) {
      this.refusedEvents++;
      return;
    }
    this.#push(frame(XsType.WATCH_EVENT, 0, 0, payload), special ? '' : payload);
  }

  /** Ends the connection; the daemon forgets its watches and transactions. Idempotent. */
  close(reason: string, error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    this.#queue = [];
    this.#queueKeys = [];
    this.#queueTimes = [];
    this.#queuedBytes = 0;
    this.#queuedEvents.clear();
    this.#held = [];
    if (error === undefined) this.#stream.end();
    this.#stream.destroy(error);
    this.#handler.closed(this, reason);
  }

  /**
   * Takes bytes read from the peer (for a connection `fedByCaller`). The chunk is only read
   * during the call: requests are handled at once, and bytes of an incomplete one are copied.
   */
  receive(chunk: Uint8Array): void {
    this.#onData(chunk);
  }

  #onData(chunk: Uint8Array): void {
    if (this.closed) return;
    // Replies to this chunk's requests leave in one write at its end, without a microtask.
    this.#inData = true;
    try {
      this.#decoder.feed(chunk, (msg) => {
        if (this.closed) return;
        if (this.#stalled) this.#held.push({ ...msg, payload: new Uint8Array(msg.payload) });
        else this.#take(msg);
      });
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      this.close(`protocol error: ${e.message}`, e);
    } finally {
      this.#inData = false;
    }
    if (!this.#flushScheduled && this.#queue.length > 0) this.#flush();
  }

  /** Hands a request to the daemon; stops taking more once the outstanding limit is reached. */
  #take(msg: XsMessage): void {
    this.#handler.message(this, msg);
    if (this.#maxOutstanding > 0 && this.#outstanding >= this.#maxOutstanding && !this.#stalled) {
      // conn_can_read: no further requests until the peer has taken some replies.
      this.#stalled = true;
      this.#stream.pause();
    }
  }

  /** Replies of one write were taken by the stream: maybe take held requests again. */
  #written(replies: number): void {
    this.#outstanding -= replies;
    if (!this.#stalled || this.closed || this.#outstanding >= this.#maxOutstanding) return;
    this.#stalled = false;
    while (this.#held.length > 0 && !this.#stalled && !this.closed) this.#take(this.#held.shift()!);
    if (!this.#stalled && !this.#blocked && !this.closed) this.#stream.resume();
  }

  #push(buf: Buffer, eventKey: string | null): void {
    if (this.closed) return;
    if (eventKey === null && this.#maxOutstanding > 0) this.#outstanding++;
    this.#queue.push(buf);
    this.#queueKeys.push(eventKey);
    this.#queueTimes.push(eventKey !== null && this.#eventTimeoutMs > 0 ? Date.now() : 0);
    this.#queuedBytes += buf.length;
    if (eventKey) this.#queuedEvents.set(eventKey, (this.#queuedEvents.get(eventKey) ?? 0) + 1);
    if (this.pendingBytes > this.#maxOutput) {
      this.dropped = true;
      this.close(
        `dropped: ${this.pendingBytes} bytes of replies and events wait for a peer that does not read (limit ${this.#maxOutput})`,
      );
      return;
    }
    if (!this.#flushScheduled && !this.#blocked && !this.#inData) {
      this.#flushScheduled = true;
      queueMicrotask(this.#flushTask);
    }
  }

  readonly #flushTask = (): void => this.#flush();

  #flush(): void {
    this.#flushScheduled = false;
    if (this.closed || this.#blocked || this.#queue.length === 0) return;
    const now = this.#eventTimeoutMs > 0 ? Date.now() : 0;
    let out: Buffer;
    if (this.#queue.length === 1 && now === 0) {
      out = this.#queue[0]!;
    } else {
      const parts: Buffer[] = [];
      for (let i = 0; i < this.#queue.length; i++) {
        const t = this.#queueTimes[i]!;
        if (t !== 0 && now - t > this.#eventTimeoutMs) {
          this.expiredEvents++;
          continue;
        }
        parts.push(this.#queue[i]!);
      }
      out = Buffer.concat(parts);
    }
    let replies = 0;
    if (this.#maxOutstanding > 0) for (const k of this.#queueKeys) if (k === null) replies++;
    if (this.#queue.length === 1) {
      // The usual single reply: the arrays are kept for the next (no allocation per reply).
      this.#queue.pop();
      this.#queueKeys.pop();
      this.#queueTimes.pop();
    } else {
      this.#queue = [];
      this.#queueKeys = [];
      this.#queueTimes = [];
    }
    this.#queuedBytes = 0;
    if (this.#queuedEvents.size > 0) this.#queuedEvents.clear();
    this.#handler.traceOut?.(this, out);
    const ok =
      replies > 0 ? this.#stream.write(out, () => this.#written(replies)) : this.#stream.write(out);
    if (!ok) {
      // The peer is not keeping up: stop taking requests from it until it drains.
      this.#blocked = true;
      this.#stream.pause();
    }
  }

  #onDrain(): void {
    if (!this.#blocked || this.closed) return;
    this.#blocked = false;
    if (!this.#stalled) this.#stream.resume();
    this.#flush();
  }
}

const HEADER = XS_HEADER_SIZE;

function frame(type: number, reqId: number, txId: number, payload: string): Buffer {
  const len = payload.length;
  const buf = Buffer.allocUnsafe(HEADER + len);
  if (XS_LITTLE_ENDIAN) {
    buf.writeUInt32LE(type, 0);
    buf.writeUInt32LE(reqId >>> 0, 4);
    buf.writeUInt32LE(txId >>> 0, 8);
    buf.writeUInt32LE(len, 12);
  } else {
    buf.writeUInt32BE(type, 0);
    buf.writeUInt32BE(reqId >>> 0, 4);
    buf.writeUInt32BE(txId >>> 0, 8);
    buf.writeUInt32BE(len, 12);
  }
  if (len > 0) buf.write(payload, HEADER, len, 'latin1');
  return buf;
}
