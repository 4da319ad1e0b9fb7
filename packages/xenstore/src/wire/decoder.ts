import { XsProtocolError } from './errors.js';
import { XS_LITTLE_ENDIAN, type XsMessage } from './message.js';
import { XENSTORE_PAYLOAD_MAX, XS_HEADER_SIZE, xsTypeName } from './types.js';

export interface XsDecoderOptions {
  /** Largest accepted `len`; checked as soon as the header is known. Default 4096. */
  maxPayload?: number;
  /** Names the peer in protocol errors, e.g. `xenstored at /run/xenstored/socket`. */
  peer?: string;
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
        let view: DataView;
        let at: number;
        if (this.#fill === 0 && n - i >= XS_HEADER_SIZE) {
          view = new DataView(chunk.buffer, chunk.byteOffset + i, XS_HEADER_SIZE);
          at = 0;
          i += XS_HEADER_SIZE;
        } else {
          const k = Math.min(XS_HEADER_SIZE - this.#fill, n - i);
          this.#buf.set(chunk.subarray(i, i + k), this.#fill);
          this.#fill += k;
          i += k;
          if (this.#fill < XS_HEADER_SIZE) break;
          view = new DataView(this.#buf.buffer, 0, XS_HEADER_SIZE);
          at = 0;
          this.#fill = 0;
        }
        this.#type = view.getUint32(at, XS_LITTLE_ENDIAN);
        this.#reqId = view.getUint32(at + 4, XS_LITTLE_ENDIAN);
        this.#txId = view.getUint32(at + 8, XS_LITTLE_ENDIAN);
        const len = view.getUint32(at + 12, XS_LITTLE_ENDIAN);
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
        payload = new Uint8Array(chunk.subarray(i, i + len));
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
