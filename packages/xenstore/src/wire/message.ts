import { XsError } from './errors.js';
import { XENSTORE_PAYLOAD_MAX, XS_HEADER_SIZE, xsTypeName } from './types.js';

/** One xenstore message: the header fields of `struct xsd_sockmsg` and the payload bytes. */
export interface XsMessage {
  /** An {@link XsType} number; decoders pass unknown numbers through (servers answer ENOSYS). */
  readonly type: number;
  /** Echoed unchanged in the reply; 0 in watch events. */
  readonly reqId: number;
  /** Transaction id; 0 = none. */
  readonly txId: number;
  readonly payload: Uint8Array;
}

/** The header is in host byte order; every Xen platform Node runs on is little-endian. */
export const XS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const encoder = new TextEncoder();

/**
 * A reusable message writer: `begin()` reserves the header, `string()`/`raw()` append payload,
 * `end()` back-patches `len` (and checks the limit), `flush()` hands out every finished message
 * since the last flush as one chunk. Several messages can be batched before one flush (cork).
 */
export class XsWriter {
  #buf: Uint8Array;
  #view: DataView;
  #pos = 0;
  #start = -1;
  readonly maxPayload: number;

  constructor(options: { maxPayload?: number; initialSize?: number } = {}) {
    this.maxPayload = options.maxPayload ?? XENSTORE_PAYLOAD_MAX;
    this.#buf = new Uint8Array(options.initialSize ?? 8192);
    this.#view = new DataView(this.#buf.buffer);
  }

  /** Bytes of finished messages waiting for {@link flush}. */
  get length(): number {
    return this.#start === -1 ? this.#pos : this.#start;
  }

  begin(type: number, reqId: number, txId = 0): this {
    if (this.#start !== -1) throw new Error('XsWriter.begin() called inside an unfinished message');
    this.#ensure(XS_HEADER_SIZE);
    this.#start = this.#pos;
    const v = this.#view;
    const p = this.#pos;
    v.setUint32(p, type >>> 0, XS_LITTLE_ENDIAN);
    v.setUint32(p + 4, reqId >>> 0, XS_LITTLE_ENDIAN);
    v.setUint32(p + 8, txId >>> 0, XS_LITTLE_ENDIAN);
    v.setUint32(p + 12, 0, XS_LITTLE_ENDIAN);
    this.#pos += XS_HEADER_SIZE;
    return this;
  }

  /** Appends `s` as UTF-8 followed by one NUL. */
  string(s: string): this {
    this.raw(s);
    this.#ensure(1);
    this.#buf[this.#pos++] = 0;
    return this;
  }

  /** Appends bytes (or a string as UTF-8) with no terminator. */
  raw(data: Uint8Array | string): this {
    if (typeof data === 'string') {
      if (data.length === 0) return this;
      this.#ensure(data.length * 3);
      const { written } = encoder.encodeInto(data, this.#buf.subarray(this.#pos));
      this.#pos += written;
    } else {
      this.#ensure(data.length);
      this.#buf.set(data, this.#pos);
      this.#pos += data.length;
    }
    return this;
  }

  /**
   * Finishes the message by writing its `len`. A payload over `maxPayload` throws `E2BIG` (as
   * libxenstore does) and the message is discarded; earlier finished messages are kept.
   */
  end(): this {
    const start = this.#start;
    if (start === -1) throw new Error('XsWriter.end() called without begin()');
    const len = this.#pos - start - XS_HEADER_SIZE;
    this.#start = -1;
    if (len > this.maxPayload) {
      const type = this.#view.getUint32(start, XS_LITTLE_ENDIAN);
      this.#pos = start;
      throw new XsError(
        'E2BIG',
        `xenstore ${xsTypeName(type)} payload of ${len} bytes exceeds ${this.maxPayload}`,
        { details: { type, len, max: this.maxPayload } },
      );
    }
    this.#view.setUint32(start + 12, len, XS_LITTLE_ENDIAN);
    return this;
  }

  /** Drops an unfinished message (after a caller-side error between begin and end). */
  abort(): this {
    if (this.#start !== -1) {
      this.#pos = this.#start;
      this.#start = -1;
    }
    return this;
  }

  /** Writes a whole message. */
  message(msg: XsMessage): this {
    return this.begin(msg.type, msg.reqId, msg.txId).raw(msg.payload).end();
  }

  /** A copy of every finished message since the last flush; the writer keeps its buffer. */
  flush(): Uint8Array {
    if (this.#start !== -1) throw new Error('XsWriter.flush() inside an unfinished message');
    // Buffer.from copies into Node's pooled slab: cheaper than a fresh ArrayBuffer per flush.
    const out: Uint8Array = Buffer.from(this.#buf.subarray(0, this.#pos));
    this.#pos = 0;
    return out;
  }

  #ensure(extra: number): void {
    const need = this.#pos + extra;
    if (need <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }
}

/** Encodes one message (header + payload) into a new array; `E2BIG` over `maxPayload`. */
export function encodeMessage(msg: XsMessage, maxPayload = XENSTORE_PAYLOAD_MAX): Uint8Array {
  const len = msg.payload.length;
  if (len > maxPayload) {
    throw new XsError(
      'E2BIG',
      `xenstore ${xsTypeName(msg.type)} payload of ${len} bytes exceeds ${maxPayload}`,
      { details: { type: msg.type, len, max: maxPayload } },
    );
  }
  const out = new Uint8Array(XS_HEADER_SIZE + len);
  const v = new DataView(out.buffer);
  v.setUint32(0, msg.type >>> 0, XS_LITTLE_ENDIAN);
  v.setUint32(4, msg.reqId >>> 0, XS_LITTLE_ENDIAN);
  v.setUint32(8, msg.txId >>> 0, XS_LITTLE_ENDIAN);
  v.setUint32(12, len, XS_LITTLE_ENDIAN);
  out.set(msg.payload, XS_HEADER_SIZE);
  return out;
}

/** Reads the 16-byte header at `offset` (no checks). */
export function decodeHeader(
  bytes: Uint8Array,
  offset = 0,
): { type: number; reqId: number; txId: number; len: number } {
  const v = new DataView(bytes.buffer, bytes.byteOffset + offset, XS_HEADER_SIZE);
  return {
    type: v.getUint32(0, XS_LITTLE_ENDIAN),
    reqId: v.getUint32(4, XS_LITTLE_ENDIAN),
    txId: v.getUint32(8, XS_LITTLE_ENDIAN),
    len: v.getUint32(12, XS_LITTLE_ENDIAN),
  };
}
