import { channel } from 'node:diagnostics_channel';
import { isXenconsError } from '@xencons/errors';
import { describe, expect, it } from 'vitest';
import { XsType } from '../wire/types.js';
import { openXenstore } from './client.js';
import { FakeServer, reply, text } from './test-support.js';

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

const okServer = () =>
  new FakeServer((m) => {
    if (m.type === XsType.READ)
      return [reply(m, `value-of-${Buffer.from(m.payload).toString('latin1').slice(0, -1)}`)];
    if (m.type === XsType.WATCH || m.type === XsType.UNWATCH || m.type === XsType.WRITE)
      return [reply(m, 'OK\0')];
    return [reply(m, 'ENOSYS\0', XsType.ERROR)];
  });

describe('client against a scripted server', () => {
  it('times out a request, swallows its late reply and keeps working', async () => {
    let hold: (() => void) | undefined;
    const server = new FakeServer((m, s) => {
      if (Buffer.from(m.payload).toString('latin1') === '/slow\0') {
        hold = () => s.send(reply(m, 'late'));
        return undefined;
      }
      return [reply(m, 'fast')];
    });
    const xs = await openXenstore({ transport: server.transport(), timeout: 50 });
    const err = await rejection(xs.read('/slow'));
    expect(isXenconsError(err, 'ERR_XS_TIMEOUT')).toBe(true);
    hold?.();
    expect(await xs.readString('/other')).toBe('fast');
    expect(xs.state).toBe('open');
    xs.destroy();
  });

  it('an AbortSignal fired after sending rejects with ERR_XS_ABORTED', async () => {
    const server = new FakeServer(() => undefined);
    const xs = await openXenstore({ transport: server.transport(), timeout: 0 });
    const ac = new AbortController();
    const p = xs.read('/never', { signal: ac.signal });
    await new Promise((r) => setTimeout(r, 5));
    expect(server.requests.length).toBe(1);
    ac.abort();
    expect(isXenconsError(await rejection(p), 'ERR_XS_ABORTED')).toBe(true);
    xs.destroy();
  });

  it('a reply for a req_id that is not in flight is a protocol error that fails pending requests', async () => {
    const server = new FakeServer(() => undefined);
    const xs = await openXenstore({ transport: server.transport() });
    const p = xs.read('/a');
    await new Promise((r) => setTimeout(r, 5));
    server.send({ type: XsType.READ, reqId: 999_999, txId: 0, payload: text('x') });
    const err = await rejection(p);
    expect(isXenconsError(err, 'ERR_XS_CLOSED')).toBe(true);
    expect(isXenconsError((err as Error).cause, 'ERR_XS_PROTOCOL')).toBe(true);
    expect(xs.state).toBe('closed'); // no reconnect on a stream transport by default
  });

  it('an over-size header from the server closes the connection', async () => {
    const server = new FakeServer(() => undefined);
    const xs = await openXenstore({ transport: server.transport() });
    const p = xs.read('/a');
    const bad = new Uint8Array(16);
    new DataView(bad.buffer).setUint32(12, 5000, true);
    await new Promise((r) => setTimeout(r, 5));
    server.send(bad);
    expect(isXenconsError(((await rejection(p)) as Error).cause, 'ERR_XS_PROTOCOL')).toBe(true);
  });

  it('a reply of the wrong type is a protocol error', async () => {
    const server = new FakeServer((m) => [reply(m, 'OK\0', XsType.WRITE)]);
    const xs = await openXenstore({ transport: server.transport() });
    const err = await rejection(xs.read('/a'));
    expect(isXenconsError((err as Error).cause, 'ERR_XS_PROTOCOL')).toBe(true);
  });

  it('watch events are matched by token, whatever their req_id (as /dev/xen/xenbus sends them)', async () => {
    const server = okServer();
    const xs = await openXenstore({ transport: server.transport() });
    const w = await xs.watch('/w', { initial: false });
    server.send({
      type: XsType.WATCH_EVENT,
      reqId: 0xdeadbeef,
      txId: 0x0badf00d,
      payload: text(`/w/x\0${w.token}\0`),
    });
    server.send({
      type: XsType.WATCH_EVENT,
      reqId: 0,
      txId: 0,
      payload: text(`/w/y\0other-token\0`),
    });
    server.send({
      type: XsType.WATCH_EVENT,
      reqId: 7,
      txId: 0,
      payload: text(`/w/z\0${w.token}\0`),
    });
    expect((await w.next()).value).toEqual({ path: '/w/x', token: w.token });
    expect((await w.next()).value).toEqual({ path: '/w/z', token: w.token });
    await w.close();
    const unwatch = server.requests.at(-1)!;
    expect(unwatch.type).toBe(XsType.UNWATCH);
    expect(Buffer.from(unwatch.payload).toString('latin1')).toBe(`/w\0${w.token}\0`);
    xs.destroy();
  });

  it('a full watch queue drops and counts events (and says so on diagnostics_channel)', async () => {
    const server = okServer();
    const xs = await openXenstore({ transport: server.transport() });
    const drops: unknown[] = [];
    const ch = channel('xencons:xenstore:watch-drop');
    const onDrop = (m: unknown) => drops.push(m);
    ch.subscribe(onDrop);
    try {
      const w = await xs.watch('/q', { maxQueue: 2, initial: false });
      for (const p of ['/q/1', '/q/2', '/q/3', '/q/4']) {
        server.send({
          type: XsType.WATCH_EVENT,
          reqId: 0,
          txId: 0,
          payload: text(`${p}\0${w.token}\0`),
        });
      }
      await xs.read('/sync');
      expect(w.queued).toBe(2);
      expect(w.dropped).toBe(2);
      expect(drops.length).toBe(2);
    } finally {
      ch.unsubscribe(onDrop);
      xs.destroy();
    }
  });

  it('DIRECTORY: E2BIG switches to DIRECTORY_PART and restarts when gencnt changes', async () => {
    let gen = 1;
    let calls = 0;
    const server = new FakeServer((m) => {
      if (m.type === XsType.DIRECTORY) return [reply(m, 'E2BIG\0', XsType.ERROR)];
      const [, off] = Buffer.from(m.payload).toString('latin1').split('\0');
      calls++;
      if (calls === 2) gen = 2; // the directory changes between the first and second page
      if (off === '0') return [reply(m, `${gen}\0a\0bb\0`)];
      return [reply(m, `${gen}\0ccc\0\0`)];
    });
    const xs = await openXenstore({ transport: server.transport() });
    expect(await xs.directory('/big')).toEqual(['a', 'bb', 'ccc']);
    const offsets = server.requests
      .filter((r) => r.type === XsType.DIRECTORY_PART)
      .map((r) => Buffer.from(r.payload).toString('latin1').split('\0')[1]);
    expect(offsets).toEqual(['0', '5', '0', '5']);
    xs.destroy();
  });

  it('DIRECTORY_PART unsupported (ENOSYS) is reported as E2BIG, as libxenstore does', async () => {
    const server = new FakeServer((m) =>
      m.type === XsType.DIRECTORY
        ? [reply(m, 'E2BIG\0', XsType.ERROR)]
        : [reply(m, 'ENOSYS\0', XsType.ERROR)],
    );
    const xs = await openXenstore({ transport: server.transport() });
    expect(isXenconsError(await rejection(xs.directory('/big')), 'E2BIG')).toBe(true);
    xs.destroy();
  });

  it('the xenbus-device payload cap (4080) is enforced with E2BIG before sending', async () => {
    const server = okServer();
    const xs = await openXenstore({ transport: server.transport({ maxPayload: 4080 }) });
    expect(isXenconsError(await rejection(xs.write('/v', new Uint8Array(4080))), 'E2BIG')).toBe(
      true,
    );
    await xs.write('/v', new Uint8Array(4080 - 3));
    expect(server.requests.length).toBe(1);
    xs.destroy();
  });

  it('requests in flight when the connection drops fail; reconnect re-registers watches first', async () => {
    const server = okServer();
    const xs = await openXenstore({
      transport: server.transport({ reconnect: true }),
      reconnect: { initialDelay: 1 },
    });
    const w = await xs.watch('/r');
    server.handler = () => undefined; // stop answering
    const lost = xs.read('/a');
    await new Promise((r) => setTimeout(r, 5));
    server.handler = okServer().handler;
    const before = server.requests.length;
    server.drop();
    expect(isXenconsError(await rejection(lost), 'ERR_XS_CLOSED')).toBe(true);
    expect(await xs.readString('/b')).toBe('value-of-/b');
    expect(server.connections).toBe(2);
    const after = server.requests.slice(before);
    expect(after[0]?.type).toBe(XsType.WATCH);
    expect(Buffer.from(after[0]!.payload).toString('latin1')).toBe(`/r\0${w.token}\0`);
    xs.destroy();
    expect(w.ended).toBe(true);
  });

  it('transactions retry with backoff and stop at the budget; diagnostics see each retry', async () => {
    let started = 0;
    const server = new FakeServer((m) => {
      if (m.type === XsType.TRANSACTION_START) return [reply(m, `${++started}\0`)];
      if (m.type === XsType.TRANSACTION_END) return [reply(m, 'EAGAIN\0', XsType.ERROR)];
      return [reply(m, 'OK\0')];
    });
    const xs = await openXenstore({ transport: server.transport() });
    const retries: unknown[] = [];
    const ch = channel('xencons:xenstore:transaction-retry');
    const onRetry = (m: unknown) => retries.push(m);
    ch.subscribe(onRetry);
    try {
      const err = await rejection(
        xs.transaction((tx) => tx.write('/t', 'x'), { retries: 4, initialDelay: 1, maxDelay: 2 }),
      );
      expect(isXenconsError(err, 'EAGAIN')).toBe(true);
      expect(started).toBe(5);
      expect(retries.length).toBe(4);
      const writes = server.requests.filter((r) => r.type === XsType.WRITE);
      expect(new Set(writes.map((w) => w.txId))).toEqual(new Set([1, 2, 3, 4, 5]));
    } finally {
      ch.unsubscribe(onRetry);
      xs.destroy();
    }
  });

  it('cork() sends nothing until uncork(), then everything in one write', async () => {
    const server = okServer();
    const xs = await openXenstore({ transport: server.transport() });
    xs.cork();
    const ps = [xs.read('/1'), xs.read('/2'), xs.read('/3')];
    await new Promise((r) => setTimeout(r, 5));
    expect(server.requests.length).toBe(0);
    xs.uncork();
    expect((await Promise.all(ps)).length).toBe(3);
    expect(server.requests.map((r) => r.reqId)).toEqual([1, 2, 3]);
    xs.destroy();
  });

  it('close() waits for replies in flight', async () => {
    const server = new FakeServer((m, s) => {
      setTimeout(() => s.send(reply(m, 'done')), 20);
      return undefined;
    });
    const xs = await openXenstore({ transport: server.transport() });
    const p = xs.readString('/x');
    await xs.close();
    expect(await p).toBe('done');
    expect(xs.state).toBe('closed');
  });
});
