import { join } from 'node:path';
import { makeTempDir } from '@xencons/test-utils';
import { XsType } from '@xencons/xenstore';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TestClient } from '../test/client.js';
import { type RunningXenstored, startXenstored } from './server.js';

let xsd: RunningXenstored;
let dir: { path: string; remove: () => void };
const clients: TestClient[] = [];

beforeEach(async () => {
  dir = makeTempDir('xencons-xenstored-');
  xsd = await startXenstored({ socketPath: join(dir.path, 'socket'), maxOutputBytes: 256 * 1024 });
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await xsd.close();
  dir.remove();
});

async function socketClient(): Promise<TestClient> {
  const c = await TestClient.socket(xsd.socketPath!);
  clients.push(c);
  return c;
}

const closed = (c: TestClient) =>
  new Promise<void>((resolve) => (c.closed ? resolve() : c.stream.once('close', () => resolve())));

describe('connections never take the daemon down', () => {
  it('the socket is mode 0600 and every socket peer is dom0', async () => {
    const { statSync } = await import('node:fs');
    expect(statSync(xsd.socketPath!).mode & 0o777).toBe(0o600);
    const c = await socketClient();
    expect(await c.call(XsType.CONTROL, 'print\0hi\0')).toBe('OK\0');
  });

  it('an over-size length closes that connection at the header; others carry on', async () => {
    const bad = await socketClient();
    const good = await socketClient();
    const header = Buffer.alloc(16);
    header.writeUInt32LE(XsType.WRITE, 0);
    header.writeUInt32LE(4097, 12);
    bad.stream.write(header);
    await closed(bad);
    expect(await good.write('/still', 'fine')).toBe('OK\0');
    expect(xsd.daemon.stats().protocolErrors).toBe(1);
  });

  it('socket peers reading into one shared buffer keep their partial requests apart', async () => {
    const a = await socketClient();
    const b = await socketClient();
    const c = await socketClient();
    const fa = a.frame(XsType.WRITE, `/shared/a\0${'a'.repeat(3000)}`);
    const fb = b.frame(XsType.WRITE, `/shared/b\0${'b'.repeat(3000)}`);
    const ra = a.replyTo(fa);
    const rb = b.replyTo(fb);
    // Parts of both requests arrive in turns, each read into the same buffer (a round trip of a
    // third peer in between lets the daemon read the part before the next is sent).
    const parts: [TestClient, Buffer][] = [
      [a, fa.subarray(0, 1500)],
      [b, fb.subarray(0, 10)],
      [a, fa.subarray(1500, 1510)],
      [b, fb.subarray(10, 2000)],
      [a, fa.subarray(1510)],
      [b, fb.subarray(2000)],
    ];
    for (const [peer, bytes] of parts) {
      peer.stream.write(bytes);
      expect(await c.read('/tool/xenstored')).toBe('');
    }
    expect((await ra).text).toBe('OK\0');
    expect((await rb).text).toBe('OK\0');
    expect(await c.read('/shared/a')).toBe('a'.repeat(3000));
    expect(await c.read('/shared/b')).toBe('b'.repeat(3000));
  });

  it('a payload of exactly 4096 bytes is accepted', async () => {
    const c = await socketClient();
    const value = 'v'.repeat(4096 - '/max\0'.length);
    expect(await c.write('/max', value)).toBe('OK\0');
    expect(await c.read('/max')).toBe(value);
  });

  it('a peer that stops reading is dropped once its queue passes the bound; others are served', async () => {
    const stalled = await socketClient();
    const writer = await socketClient();
    // Events carry path and token: a 3000-byte token makes each one about 3 KiB.
    expect(await stalled.watch('/flood', 't'.repeat(3000))).toBe('OK\0');
    stalled.stream.pause();
    // Every write queues an event for the stalled peer; the kernel buffer fills, then ours.
    const value = 'x';
    for (
      let i = 0;
      i < 2000 && !stalled.closed && xsd.daemon.stats().droppedSlowConnections === 0;
      i++
    ) {
      expect(await writer.write(`/flood/n${i}`, value)).toBe('OK\0');
    }
    expect(xsd.daemon.stats().droppedSlowConnections).toBe(1);
    expect(await writer.read('/flood/n0')).toBe(value);
  });

  it('arbitrary bytes from a guest only ever get replies or a closed connection', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 600 }),
        fc.integer({ min: 1, max: 64 }),
        async (bytes, split) => {
          const g = new TestClient(xsd.connectDomain(5));
          for (let i = 0; i < bytes.length; i += split)
            g.stream.write(bytes.subarray(i, i + split));
          await new Promise((r) => setImmediate(r));
          g.close();
          const d0 = new TestClient(xsd.connectDomain(0));
          const ok = await d0.read('/tool/xenstored');
          d0.close();
          return ok === '';
        },
      ),
      { numRuns: 150 },
    );
    expect(xsd.daemon.check()).toEqual([]);
  });

  it('well-formed frames of any type and payload never crash it', async () => {
    const g = new TestClient(xsd.connectDomain(5));
    const d0 = new TestClient(xsd.connectDomain(0));
    clients.push(g, d0);
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 30 }),
        fc.string({
          maxLength: 40,
          unit: fc.constantFrom('/', 'a', '\0', '@', 'T', '1', 'r', 'n', '-', ' '),
        }),
        fc.boolean(),
        async (type, payload, priv) => {
          const r = await (priv ? d0 : g).request(type, payload);
          return typeof r.type === 'number';
        },
      ),
      { numRuns: 400 },
    );
    expect(xsd.daemon.check()).toEqual([]);
  });
});
