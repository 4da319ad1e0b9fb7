import { isXenconsError } from '@xencons/errors';
import { describe, expect, it } from 'vitest';
import { decodeMessages, XsDecoder } from './decoder.js';
import { decodeHeader, encodeMessage, XsWriter } from './message.js';
import { XENBUS_DEV_PAYLOAD_MAX, XsType } from './types.js';

describe('XsWriter', () => {
  it('back-patches len and encodes strings with one NUL each', () => {
    const w = new XsWriter({ initialSize: 4 });
    const bytes = w.begin(XsType.WATCH, 5, 0).string('/a').string('tok').end().flush();
    expect(decodeHeader(bytes)).toEqual({ type: 4, reqId: 5, txId: 0, len: 7 });
    expect(Buffer.from(bytes.subarray(16)).toString('latin1')).toBe('/a\0tok\0');
  });

  it('rejects an over-size payload with E2BIG and keeps earlier messages', () => {
    const w = new XsWriter({ maxPayload: XENBUS_DEV_PAYLOAD_MAX });
    w.begin(XsType.READ, 1).string('/ok').end();
    w.begin(XsType.WRITE, 2).string('/big').raw(new Uint8Array(XENBUS_DEV_PAYLOAD_MAX));
    let error: unknown;
    try {
      w.end();
    } catch (err) {
      error = err;
    }
    expect(isXenconsError(error, 'E2BIG')).toBe(true);
    const out = decodeMessages(w.flush());
    expect(out.map((m) => m.reqId)).toEqual([1]);
  });

  it('encodes UTF-8 values and grows as needed', () => {
    const w = new XsWriter({ initialSize: 1 });
    const text = 'é€😀'.repeat(200);
    const [m] = decodeMessages(w.begin(XsType.WRITE, 3).string('/u').raw(text).end().flush());
    expect(Buffer.from(m!.payload).toString('utf8')).toBe(`/u\0${text}`);
  });

  it('abort() drops the unfinished message', () => {
    const w = new XsWriter();
    w.begin(XsType.READ, 1).string('/a').end();
    w.begin(XsType.READ, 2).string('/b').abort();
    expect(decodeMessages(w.flush()).map((m) => m.reqId)).toEqual([1]);
  });

  it('encodeMessage refuses more than the limit with E2BIG', () => {
    expect(() =>
      encodeMessage({ type: 2, reqId: 0, txId: 0, payload: new Uint8Array(4097) }),
    ).toThrow(/exceeds 4096/);
  });
});

describe('XsDecoder', () => {
  it('poisons itself when the callback throws', () => {
    const d = new XsDecoder();
    const two = Buffer.concat([
      encodeMessage({ type: 2, reqId: 1, txId: 0, payload: new Uint8Array(1) }),
      encodeMessage({ type: 2, reqId: 2, txId: 0, payload: new Uint8Array(1) }),
    ]);
    const seen: number[] = [];
    expect(() =>
      d.feed(two, (m) => {
        seen.push(m.reqId);
        throw new Error('consumer bug');
      }),
    ).toThrow('consumer bug');
    expect(seen).toEqual([1]);
    expect(() => d.feed(new Uint8Array(0), () => {})).toThrow('consumer bug');
    d.reset();
    d.feed(two, (m) => seen.push(m.reqId));
    expect(seen).toEqual([1, 1, 2]);
  });

  it('payloads are copies, not views of the input chunk', () => {
    const bytes = encodeMessage({ type: 2, reqId: 1, txId: 0, payload: Uint8Array.of(1, 2, 3) });
    const [m] = decodeMessages(bytes);
    bytes[16] = 9;
    expect([...m!.payload]).toEqual([1, 2, 3]);
  });

  it('with copyPayloads: false, whole messages are views of the chunk, split ones copies', () => {
    const a = encodeMessage({ type: 2, reqId: 1, txId: 0, payload: Uint8Array.of(1, 2, 3) });
    const b = encodeMessage({ type: 11, reqId: 2, txId: 7, payload: Uint8Array.of(4, 5) });
    const chunk = new Uint8Array([...a, ...b]);
    const decoder = new XsDecoder({ copyPayloads: false });
    const got: { type: number; reqId: number; txId: number; payload: Uint8Array }[] = [];
    decoder.feed(chunk.subarray(0, a.length + 17), (m) => got.push(m));
    decoder.feed(chunk.subarray(a.length + 17), (m) => got.push(m));
    expect(got.map((m) => [m.type, m.reqId, m.txId, [...m.payload]])).toEqual([
      [2, 1, 0, [1, 2, 3]],
      [11, 2, 7, [4, 5]],
    ]);
    chunk[16] = 9; // the first payload is a view of the chunk
    chunk[a.length + 16] = 9; // the second was staged, so it is a copy
    expect([...got[0]!.payload]).toEqual([9, 2, 3]);
    expect([...got[1]!.payload]).toEqual([4, 5]);
  });

  it('decodeMessages refuses a trailing partial message', () => {
    const bytes = encodeMessage({ type: 2, reqId: 1, txId: 0, payload: Uint8Array.of(1, 2, 3) });
    expect(() => decodeMessages(bytes.subarray(0, 18))).toThrow(/incomplete/);
  });
});
