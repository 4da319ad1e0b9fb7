import { xenstoreServerRings } from '@xencons/ring';
import { describe, expect, it } from 'vitest';
import { XsDecoder } from '../wire/decoder.js';
import { encodeMessage, type XsMessage } from '../wire/message.js';
import { parseWriteRequest } from '../wire/payload.js';
import { XsType } from '../wire/types.js';
import { openXenstore } from './client.js';
import { ringTransport, type XsEventChannel } from './ring-transport.js';

/** Two ends of an in-memory event channel; a notification is delivered asynchronously. */
function evtchnPair(): [XsEventChannel, XsEventChannel] {
  const handlers: [Set<() => void>, Set<() => void>] = [new Set(), new Set()];
  const end = (mine: 0 | 1): XsEventChannel => ({
    notify() {
      setImmediate(() => {
        for (const h of handlers[mine === 0 ? 1 : 0]) h();
      });
    },
    subscribe(h) {
      handlers[mine].add(h);
      return () => handlers[mine].delete(h);
    },
  });
  return [end(0), end(1)];
}

/**
 * A minimal xenstore server on the other side of the page: decodes requests from `req`, keeps a
 * flat store, streams replies (bigger than the ring) into `rsp`.
 */
function fakeRingServer(page: ArrayBuffer, evtchn: XsEventChannel) {
  const rings = xenstoreServerRings(page);
  const decoder = new XsDecoder({ peer: 'guest' });
  const store = new Map<string, Uint8Array>();
  const out: Uint8Array[] = [];
  let outAt = 0;
  const scratch = new Uint8Array(1024);
  const requests: XsMessage[] = [];
  const answer = (m: XsMessage) => {
    requests.push(m);
    const s = Buffer.from(m.payload).toString('latin1');
    const r = (type: number, payload: Uint8Array | string) =>
      out.push(
        encodeMessage({
          type,
          reqId: m.reqId,
          txId: m.txId,
          payload: typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload,
        }),
      );
    if (m.type === XsType.WRITE) {
      const w = parseWriteRequest(m.payload)!;
      store.set(w.path, w.value);
      r(XsType.WRITE, 'OK\0');
    } else if (m.type === XsType.READ) {
      const v = store.get(s.slice(0, -1));
      if (v === undefined) r(XsType.ERROR, 'ENOENT\0');
      else r(XsType.READ, v);
    } else if (m.type === XsType.WATCH) {
      const [path, token] = s.split('\0');
      r(XsType.WATCH, 'OK\0');
      out.push(
        encodeMessage({
          type: XsType.WATCH_EVENT,
          reqId: 0,
          txId: 0,
          payload: Buffer.from(`${path}\0${token}\0`),
        }),
      );
    } else r(XsType.ERROR, 'ENOSYS\0');
  };
  const pump = () => {
    let moved = false;
    for (;;) {
      const n = rings.req.read(scratch);
      if (n <= 0) break;
      moved = true;
      decoder.feed(scratch.subarray(0, n), answer);
    }
    while (out.length > 0) {
      const head = out[0]!;
      const n = rings.rsp.write(head, outAt, head.length - outAt);
      if (n <= 0) break;
      moved = true;
      outAt += n;
      if (outAt === head.length) {
        out.shift();
        outAt = 0;
      }
    }
    if (moved) evtchn.notify();
  };
  evtchn.subscribe(pump);
  return { requests, store };
}

describe('ring transport', () => {
  it('streams requests and replies larger than the 1024-byte rings, many in flight', async () => {
    const page = new ArrayBuffer(4096);
    const [guest, server] = evtchnPair();
    const fake = fakeRingServer(page, server);
    const xs = await openXenstore({
      transport: ringTransport({ page, evtchn: guest, description: 'ring:test' }),
    });
    const big = new Uint8Array(4000).map((_, i) => (i * 7) & 0xff);
    await xs.write('/local/domain/1/big', big);
    expect(Buffer.compare(await xs.read('/local/domain/1/big'), big)).toBe(0);
    const writes = Array.from({ length: 40 }, (_, i) => xs.write(`/k/${i}`, `v${i}`.repeat(100)));
    await Promise.all(writes);
    const reads = await Promise.all(Array.from({ length: 40 }, (_, i) => xs.readString(`/k/${i}`)));
    expect(reads.every((v, i) => v === `v${i}`.repeat(100))).toBe(true);
    expect(fake.requests.length).toBe(82);
    expect(await xs.readOptional('/missing')).toBeUndefined();
    const w = await xs.watch('/local/domain/1');
    expect((await w.next()).value).toEqual({ path: '/local/domain/1', token: w.token });
    xs.destroy();
  });
});
