import { XsProtocolError } from './errors.js';
import { XS_LITTLE_ENDIAN, type XsMessage } from './message.js';
import { XENSTORE_PAYLOAD_MAX, XS_HEADER_SIZE, xsTypeName } from './types.js';

export interface XsDecoderOptions {
  /** Largest accepted `len`; checked as soon as the header is known. Default 4096. */
  maxPayload?: number;
  /** Names the peer in protocol errors, e.g. `xenstored at /run/xenstored/socket`. */
  peer?: string;
  /**
   * Whether a message that arrived whole in one chunk gets a copy of its payload (the default) or
   * a view into that chunk. A view saves an allocation per message; it is only safe when the
   * caller never writes to a chunk it fed, and keeps it alive as long as any payload.
   */
  copyPayloads?: boolean;
}

/** A 32-bit header field in the host's byte order, without a DataView per header. */
function u32(b: Uint8Array, at: number): number {
  return XS_LITTLE_ENDIAN
    ? (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0
    : ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

/**
 * Streaming decoder of `xsd_sockmsg` frames. Chunks of any size go through one growable buffer;
 * whole messages inside a chunk are sliced out without staging. The length limit is checked at
 * the header, before any payload is buffered. After a protocol error the decoder is poisoned:
 * every later `feed` throws the same error and emits nothing.
 */
export class XsDecoder {
  readonly maxPayload: number;
  readonly peer: string;
  readonly #copy: boolean;
  #buf: Uint8Array;
  /** Bytes staged in #buf: header bytes while `#len === -1`, payload bytes after. */
  #fill = 0;
  #type = 0;
  #reqId = 0;
  #txId = 0;
  /** Payload length of the message in progress; -1 while its header is incomplete. */
  #len = -1;
  #error: Error | null = null;
  /** Stream offset of the next byte, for error messages. */
  #offset = 0;

  constructor(options: XsDecoderOptions = {}) {
    this.maxPayload = options.maxPayload ?? XENSTORE_PAYLOAD_MAX;
    this.peer = options.peer ?? 'xenstore peer';
    this.#copy = options.copyPayloads ?? true;
    this.#buf = new Uint8Array(256);
  }

  /** The error that poisoned this decoder, or null. */
  get error(): Error | null {
    return this.#error;
  }

  /** Bytes of an incomplete message held back (header and payload). */
  get buffered(): number {
    return this.#len === -1 ? this.#fill : XS_HEADER_SIZE + this.#fill;
  }

  /** Forgets any partial message and a poisoning error (for a fresh connection). */
  reset(): void {
    this.#fill = 0;
    this.#len = -1;
    this.#error = null;
    this.#offset = 0;
  }

  /**
   * Consumes `chunk`, calling `onMessage` for every complete message in order. Throws
   * {@link XsProtocolError} (code `ERR_XS_PROTOCOL`) for a malformed stream. If `onMessage`
   * throws, the decoder is poisoned with that error (the rest of the chunk is not decoded).
   */
  feed(chunk: Uint8Array, onMessage: (message: XsMessage) => void): void {
    if (this.#error !== null) throw this.#error;
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.#len === -1) {
        let head: Uint8Array;
        let at: number;
        if (this.#fill === 0 && n - i >= XS_HEADER_SIZE) {
          head = chunk;
          at = i;
          i += XS_HEADER_SIZE;
        } else {
          const k = Math.min(XS_HEADER_SIZE - this.#fill, n - i);
          this.#buf.set(chunk.subarray(i, i + k), this.#fill);
          this.#fill += k;
          i += k;
          if (this.#fill < XS_HEADER_SIZE) break;
          head = this.#buf;
          at = 0;
          this.#fill = 0;
        }
        this.#type = u32(head, at);
        this.#reqId = u32(head, at + 4);
        this.#txId = u32(head, at + 8);
        const len = u32(head, at + 12);
        if (len > this.maxPayload) {
          this.#poison(
            new XsProtocolError(
              `xenstore protocol error from ${this.peer}: ${xsTypeName(this.#type)} header at stream offset ${this.#offset + i - XS_HEADER_SIZE} declares a ${len}-byte payload, over the ${this.maxPayload}-byte limit`,
              {
                details: {
                  peer: this.peer,
                  type: this.#type,
                  reqId: this.#reqId,
                  txId: this.#txId,
                  len,
                  max: this.maxPayload,
                },
              },
            ),
          );
        }
        this.#len = len;
      }
      const len = this.#len;
      let payload: Uint8Array;
      if (this.#fill === 0 && n - i >= len) {
        payload = this.#copy
          ? new Uint8Array(chunk.subarray(i, i + len))
          : chunk.subarray(i, i + len);
        i += len;
      } else {
        if (this.#buf.length < len) this.#grow(len);
        const k = Math.min(len - this.#fill, n - i);
        this.#buf.set(chunk.subarray(i, i + k), this.#fill);
        this.#fill += k;
        i += k;
        if (this.#fill < len) break;
        payload = new Uint8Array(this.#buf.subarray(0, len));
        this.#fill = 0;
      }
      this.#len = -1;
      try {
        onMessage({ type: this.#type, reqId: this.#reqId, txId: this.#txId, payload });
      } catch (err) {
        this.#error = err instanceof Error ? err : new Error(String(err));
        throw err;
      }
    }
    this.#offset += n;
  }

  #poison(error: XsProtocolError): never {
    this.#error = error;
    this.#fill = 0;
    this.#len = -1;
    throw error;
  }

  #grow(size: number): void {
    let next = this.#buf.length * 2;
    while (next < size) next *= 2;
    const buf = new Uint8Array(next);
    buf.set(this.#buf.subarray(0, this.#fill));
    this.#buf = buf;
  }
}

/** Decodes a byte string that must hold whole messages only (fixtures, tests). */
export function decodeMessages(bytes: Uint8Array, options: XsDecoderOptions = {}): XsMessage[] {
  const decoder = new XsDecoder(options);
  const out: XsMessage[] = [];
  decoder.feed(bytes, (m) => out.push(m));
  if (decoder.buffered !== 0) {
    throw new XsProtocolError(
      `xenstore protocol error from ${decoder.peer}: ${decoder.buffered} trailing bytes of an incomplete message`,
      { details: { peer: decoder.peer, buffered: decoder.buffered } },
    );
  }
  return out;
}
