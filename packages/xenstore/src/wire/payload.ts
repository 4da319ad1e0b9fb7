/**
 * Payload rules per message type (xen-protocols.md §1.4). Values are binary and not
 * NUL-terminated; everything else is a NUL-terminated string. Parsers of server replies throw
 * {@link XsProtocolError}; parsers of client requests return `undefined` for a malformed payload
 * (a server answers those with `EINVAL`).
 */
import { XsProtocolError } from './errors.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8');

export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}

export function fromUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** `a\0b\0…`: each string followed by one NUL. */
export function encodeStrings(strings: readonly string[]): Uint8Array {
  let parts = 0;
  const encoded = strings.map((s) => {
    const b = encoder.encode(s);
    parts += b.length + 1;
    return b;
  });
  const out = new Uint8Array(parts);
  let at = 0;
  for (const b of encoded) {
    out.set(b, at);
    at += b.length + 1;
  }
  return out;
}

/**
 * Splits a NUL-separated list. Every NUL terminates one string; bytes after the last NUL form one
 * more string if there are any. So `a\0b\0` → ['a','b'], `a\0b` → ['a','b'], `` → [], `\0` → [''].
 */
export function decodeStrings(payload: Uint8Array): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < payload.length; i++) {
    if (payload[i] === 0) {
      out.push(decoder.decode(payload.subarray(start, i)));
      start = i + 1;
    }
  }
  if (start < payload.length) out.push(decoder.decode(payload.subarray(start)));
  return out;
}

/** Number of NUL bytes in `payload`. */
export function countNuls(payload: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < payload.length; i++) if (payload[i] === 0) n++;
  return n;
}

/**
 * Server side: the payload of a one-argument request (`path\0`, `domid\0`…). cxenstored's
 * `onearg`: exactly one NUL, at the end; otherwise `undefined` (→ EINVAL).
 */
export function parseOneArg(payload: Uint8Array): string | undefined {
  const n = payload.length;
  if (n === 0 || payload[n - 1] !== 0) return undefined;
  const first = payload.indexOf(0);
  if (first !== n - 1) return undefined;
  return decoder.decode(payload.subarray(0, n - 1));
}

/**
 * Server side: the NUL-terminated strings of a request (`get_strings`). Returns `undefined` when
 * the payload does not end in NUL (a truncated last string).
 */
export function parseRequestStrings(payload: Uint8Array): string[] | undefined {
  if (payload.length > 0 && payload[payload.length - 1] !== 0) return undefined;
  return decodeStrings(payload);
}

/**
 * Server side: `path\0value` of a WRITE. The value is everything after the first NUL and may
 * contain NULs; `undefined` when there is no NUL (EINVAL).
 */
export function parseWriteRequest(
  payload: Uint8Array,
): { path: string; value: Uint8Array } | undefined {
  const nul = payload.indexOf(0);
  if (nul === -1) return undefined;
  return { path: decoder.decode(payload.subarray(0, nul)), value: payload.slice(nul + 1) };
}

/** `path\0value`: the WRITE request payload. */
export function encodeWriteRequest(path: string, value: Uint8Array | string): Uint8Array {
  const p = encoder.encode(path);
  const v = typeof value === 'string' ? encoder.encode(value) : value;
  const out = new Uint8Array(p.length + 1 + v.length);
  out.set(p, 0);
  out.set(v, p.length + 1);
  return out;
}

/** `OK\0`, the success reply of every operation without a reply format. */
export const OK_PAYLOAD: Uint8Array = new Uint8Array([0x4f, 0x4b, 0]);

function protocol(what: string, payload: Uint8Array): XsProtocolError {
  const shown =
    payload.length > 64
      ? `${JSON.stringify(fromUtf8(payload.subarray(0, 64)))}…`
      : JSON.stringify(fromUtf8(payload));
  return new XsProtocolError(`malformed xenstore ${what} reply: ${shown}`, {
    details: { what, length: payload.length },
  });
}

/** Client side: the `OK\0` reply (also accepts `OK` without the NUL). */
export function parseOkReply(payload: Uint8Array): void {
  if (
    payload[0] === 0x4f &&
    payload[1] === 0x4b &&
    (payload.length === 2 || (payload.length === 3 && payload[2] === 0))
  )
    return;
  throw protocol('OK', payload);
}

/** Client side: the errno name of an `XS_ERROR` reply (`ENOENT\0`). */
export function parseErrorReply(payload: Uint8Array): string {
  const end = payload.indexOf(0);
  const name = fromUtf8(end === -1 ? payload : payload.subarray(0, end));
  if (!/^E[A-Z0-9]{1,15}$/.test(name)) throw protocol('ERROR', payload);
  return name;
}

/** The `ERRNO\0` payload of an `XS_ERROR` reply. */
export function encodeErrorReply(name: string): Uint8Array {
  return encodeStrings([name]);
}

/** Client side: one NUL-terminated string reply (GET_DOMAIN_PATH, TRANSACTION_START…). */
export function parseStringReply(payload: Uint8Array, what = 'string'): string {
  const end = payload.indexOf(0);
  if (end !== -1 && end !== payload.length - 1) throw protocol(what, payload);
  return fromUtf8(end === -1 ? payload : payload.subarray(0, end));
}

/** Client side: a u32 in decimal text (`TRANSACTION_START`'s id). */
export function parseU32Reply(payload: Uint8Array, what = 'number'): number {
  const s = parseStringReply(payload, what);
  if (!/^\d{1,10}$/.test(s)) throw protocol(what, payload);
  const n = Number(s);
  if (n > 0xffffffff) throw protocol(what, payload);
  return n;
}

/** Client side: `T\0` / `F\0` (IS_DOMAIN_INTRODUCED). */
export function parseBoolReply(payload: Uint8Array): boolean {
  const s = parseStringReply(payload, 'T/F');
  if (s === 'T') return true;
  if (s === 'F') return false;
  throw protocol('T/F', payload);
}

/** Client side: a DIRECTORY reply, `a\0b\0` (0 bytes = no children). */
export function parseDirectoryReply(payload: Uint8Array): string[] {
  return decodeStrings(payload);
}

/** Client side: a WATCH_EVENT payload `path\0token\0` (later strings, if any, are ignored). */
export function parseWatchEvent(payload: Uint8Array): { path: string; token: string } {
  const first = payload.indexOf(0);
  if (first === -1) throw protocol('WATCH_EVENT', payload);
  const second = payload.indexOf(0, first + 1);
  const path = fromUtf8(payload.subarray(0, first));
  const token = fromUtf8(payload.subarray(first + 1, second === -1 ? payload.length : second));
  return { path, token };
}

/** A WATCH_EVENT payload. */
export function encodeWatchEvent(path: string, token: string): Uint8Array {
  return encodeStrings([path, token]);
}

/**
 * Client side: a DIRECTORY_PART reply, `gencnt\0` then children bytes from the requested offset.
 * `data` is the raw children bytes; the list is complete when the accumulated data ends in
 * `\0\0` or is at most one byte long (libxenstore `xs_directory_part`).
 */
export function parseDirectoryPartReply(payload: Uint8Array): { gencnt: string; data: Uint8Array } {
  const nul = payload.indexOf(0);
  if (nul === -1) throw protocol('DIRECTORY_PART', payload);
  return { gencnt: fromUtf8(payload.subarray(0, nul)), data: payload.subarray(nul + 1) };
}

/**
 * Server side: the DIRECTORY_PART reply for `children` (the leaf names) from byte `offset` of the
 * NUL-terminated list, as cxenstored builds it: `gencnt\0`, then as many whole names as fit in
 * `maxPayload`, then one extra `\0` (an empty string) if the end of the list was reached. An
 * offset at or past the end gives `gencnt\0\0`. Returns `undefined` when `offset` is not the
 * start of a name (cxenstored answers EINVAL).
 */
export function encodeDirectoryPartReply(
  gencnt: string,
  children: readonly string[],
  offset: number,
  maxPayload = 4096,
): Uint8Array | undefined {
  const list = encodeStrings(children);
  const head = encoder.encode(gencnt);
  if (offset >= list.length) {
    const out = new Uint8Array(head.length + 2);
    out.set(head, 0);
    return out;
  }
  if (offset > 0 && list[offset - 1] !== 0) return undefined;
  const room = maxPayload - head.length - 1;
  let end = offset;
  while (end < list.length) {
    const next = list.indexOf(0, end) + 1;
    // Keep one byte for the end marker when this name is the last one.
    if (next - offset + (next === list.length ? 1 : 0) > room) break;
    end = next;
  }
  const atEnd = end === list.length;
  const out = new Uint8Array(head.length + 1 + (end - offset) + (atEnd ? 1 : 0));
  out.set(head, 0);
  out.set(list.subarray(offset, end), head.length + 1);
  return out;
}

/**
 * Client side: accumulates DIRECTORY_PART replies (libxenstore `xs_directory_part`). Feed each
 * reply; it says where to ask next, when to restart (the generation changed) and when it is done.
 */
export class DirectoryPartReader {
  #gencnt: string | null = null;
  #chunks: Uint8Array[] = [];
  #offset = 0;
  #restarts = 0;

  /** Byte offset to request next. */
  get offset(): number {
    return this.#offset;
  }

  /** How often the listing restarted because the node changed under it. */
  get restarts(): number {
    return this.#restarts;
  }

  /** Returns `'more'`, `'restart'` (the node changed: ask again from 0) or the children. */
  push(payload: Uint8Array): 'more' | 'restart' | string[] {
    const { gencnt, data } = parseDirectoryPartReply(payload);
    if (this.#gencnt === null) this.#gencnt = gencnt;
    else if (this.#gencnt !== gencnt) {
      this.#gencnt = null;
      this.#chunks = [];
      this.#offset = 0;
      this.#restarts++;
      return 'restart';
    }
    this.#chunks.push(data);
    this.#offset += data.length;
    const n = data.length;
    if (n <= 1 || (data[n - 1] === 0 && data[n - 2] === 0)) {
      const all = new Uint8Array(this.#offset);
      let at = 0;
      for (const c of this.#chunks) {
        all.set(c, at);
        at += c.length;
      }
      // Drop the end marker (the extra empty string), then split.
      let end = all.length;
      if (end > 0 && all[end - 1] === 0) end--;
      return decodeStrings(all.subarray(0, end));
    }
    if (data[n - 1] !== 0) throw protocol('DIRECTORY_PART', payload);
    return 'more';
  }
}
