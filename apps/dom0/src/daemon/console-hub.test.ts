import * as fs from 'node:fs';
import * as path from 'node:path';
import { Duplex, PassThrough } from 'node:stream';
import { makeTempDir } from '@xencons/test-utils';
import { afterAll, describe, expect, it } from 'vitest';
import { ConsoleHub } from './console-hub.js';
import { ConsoleLog } from './console-log.js';
import { ReplayBuffer } from './replay-buffer.js';
import { TokenBucket } from './token-bucket.js';

const scratch = makeTempDir('console-hub-');
afterAll(() => scratch.remove());

/** A fake guest console: `guestOut` is what the guest writes, `guestIn` what it receives. */
function fakeConsole() {
  const guestOut = new PassThrough();
  const guestIn = new PassThrough();
  const stream = new Duplex({
    read() {},
    write(chunk, _encoding, callback) {
      guestIn.write(chunk, callback);
    },
  });
  guestOut.on('data', (chunk) => stream.push(chunk));
  guestOut.on('end', () => stream.push(null));
  return { stream, guestOut, guestIn };
}

/** A viewer's socket stand-in: what the hub sends it, and a way to type. */
function fakeViewer() {
  let received = '';
  const peer = new Duplex({
    read() {},
    write(chunk, _encoding, callback) {
      received += chunk.toString();
      callback();
    },
  });
  return { peer, received: () => received, type: (text: string) => peer.push(text) };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

describe('ReplayBuffer', () => {
  it('keeps the newest bytes across wrap-around', () => {
    const buffer = new ReplayBuffer(8);
    buffer.append(Buffer.from('abcdef'));
    buffer.append(Buffer.from('ghij'));
    expect(Buffer.from(buffer.snapshot()).toString()).toBe('cdefghij');
    expect(Buffer.from(buffer.snapshot(3)).toString()).toBe('hij');
    buffer.append(Buffer.from('0123456789'));
    expect(Buffer.from(buffer.snapshot()).toString()).toBe('23456789');
  });
});

describe('TokenBucket', () => {
  it('grants the rate over time and no more', () => {
    let now = 0;
    const bucket = new TokenBucket(1000, 100, () => now);
    expect(bucket.take(500)).toBe(100);
    expect(bucket.take(1)).toBe(0);
    expect(bucket.waitMs(50)).toBe(50);
    now += 50;
    expect(bucket.take(500)).toBe(50);
  });
});

describe('ConsoleLog', () => {
  it('stamps lines, drops the \\r after \\n and rotates by size', async () => {
    const file = path.join(scratch.path, 'guest-a.log');
    const log = new ConsoleLog(file, { timestamps: true, maxBytes: 200, keep: 2 });
    log.write(Buffer.from('one\n\rtwo\nthr'));
    log.write(Buffer.from('ee\n'));
    await log.close();
    const text = fs.readFileSync(file, 'utf8');
    expect(text).toMatch(/^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] Logfile Opened\n/);
    expect(text).toMatch(/\] one\n\[[^\]]+\] two\n\[[^\]]+\] three\n$/);
    const rotating = new ConsoleLog(file, { maxBytes: 100, keep: 2 });
    for (let i = 0; i < 10; i++) rotating.write(Buffer.from(`${String(i).repeat(40)}\n`));
    await rotating.close();
    expect(fs.existsSync(`${file}.1`)).toBe(true);
    expect(fs.existsSync(`${file}.2`)).toBe(true);
    expect(fs.existsSync(`${file}.3`)).toBe(false);
    expect(fs.readFileSync(file, 'utf8').endsWith(`${'9'.repeat(40)}\n`)).toBe(true);
  });
});

describe('ConsoleHub', () => {
  it('fans output out to every viewer and lets only the writer type', async () => {
    const { stream, guestOut, guestIn } = fakeConsole();
    const hub = new ConsoleHub({ domid: 1, name: 'g', num: 0, stream, limit: 0, policy: 'keep' });
    const a = fakeViewer();
    const b = fakeViewer();
    expect(hub.attach(a.peer, { mode: 'rw', label: 'a' }).writer).toBe(true);
    expect(hub.attach(b.peer, { mode: 'rw', label: 'b' }).writer).toBe(false);
    expect(b.received()).toContain('read-only: a holds the input');
    let typed = '';
    guestIn.on('data', (chunk) => {
      typed += chunk;
    });
    a.type('from-a');
    b.type('from-b');
    guestOut.write('hello\n');
    await tick();
    expect(typed).toBe('from-a');
    expect(a.received()).toContain('hello\n');
    expect(b.received()).toContain('hello\n');
    const c = fakeViewer();
    hub.attach(c.peer, { mode: 'rw', takeOver: true, label: 'c', replay: 100 });
    expect(c.received()).toBe('hello\n'); // replay first
    expect(a.received()).toContain('read-only now: c took over');
    c.type('from-c');
    a.type('from-a-again');
    await tick();
    expect(typed).toBe('from-afrom-c');
    expect(hub.counters.toGuest).toBe('from-afrom-c'.length);
    hub.close('bye');
    expect(c.received()).toContain('[xencons: bye]');
  });

  it('moves to a new stream: last old bytes first, input typed meanwhile waits, viewers stay', async () => {
    const first = fakeConsole();
    const hub = new ConsoleHub({
      domid: 1,
      name: 'g',
      num: 0,
      stream: first.stream,
      limit: 0,
      policy: 'keep',
    });
    const a = fakeViewer();
    hub.attach(a.peer, { mode: 'rw', label: 'a' });
    let oldIn = '';
    first.guestIn.on('data', (chunk) => {
      oldIn += chunk.toString();
    });
    first.guestOut.write('on the old ring\n');
    await tick();
    const second = fakeConsole();
    let newIn = '';
    second.guestIn.on('data', (chunk) => {
      newIn += chunk.toString();
    });
    let openNew: (stream: Duplex) => void = () => {};
    const moved = hub.moveTo(
      () =>
        new Promise<Duplex>((resolve) => {
          openNew = resolve;
        }),
      async () => {
        // Released: its last bytes arrive, then it ends (the hub must not close for that).
        first.stream.push('last old bytes\n');
        first.stream.push(null);
      },
    );
    await tick();
    a.type('typed during the move');
    await tick();
    expect(oldIn + newIn).toBe('');
    openNew(second.stream);
    await moved;
    second.guestOut.write('on the new ring\n');
    await tick();
    expect(hub.closed).toBe(false);
    expect(a.received()).toBe('on the old ring\nlast old bytes\non the new ring\n');
    expect(newIn).toBe('typed during the move');
    expect(first.stream.destroyed).toBe(true);
    expect(hub.viewerList()).toEqual([{ id: 1, label: 'a', writer: true }]);
    expect(hub.counters.fromGuest).toBe(a.received().length);
    hub.close('bye');
  });

  it('closes with the reason when the new ring cannot be opened', async () => {
    const { stream } = fakeConsole();
    const hub = new ConsoleHub({ domid: 1, name: 'g', num: 0, stream, limit: 0, policy: 'keep' });
    const a = fakeViewer();
    hub.attach(a.peer, { mode: 'rw', label: 'a' });
    await expect(
      hub.moveTo(
        async () => {
          throw new Error('no such grant');
        },
        async () => {},
      ),
    ).rejects.toThrow('no such grant');
    expect(hub.closed).toBe(true);
    expect(a.received()).toContain('console lost while moving to a new ring: no such grant');
  });

  it('under keep, holds the guest back while the log is behind and loses nothing', async () => {
    const { stream, guestOut } = fakeConsole();
    const file = path.join(scratch.path, 'keep.log');
    const log = new ConsoleLog(file);
    const hub = new ConsoleHub({
      domid: 1,
      name: 'g',
      num: 0,
      stream,
      limit: 4096,
      policy: 'keep',
      log,
    });
    let expected = '';
    for (let i = 0; i < 2000; i++) {
      const line = `line ${i} ${'x'.repeat(50)}\n`;
      expected += line;
      guestOut.write(line);
    }
    guestOut.end();
    await new Promise((resolve) => hub.once('closed', resolve));
    await log.close();
    expect(fs.readFileSync(file, 'utf8')).toBe(expected);
    expect(hub.counters.dropped).toBe(0);
  });

  it('under discard with a rate limit, counts exactly what it dropped', async () => {
    const { stream, guestOut } = fakeConsole();
    const file = path.join(scratch.path, 'discard.log');
    const log = new ConsoleLog(file);
    const hub = new ConsoleHub({
      domid: 1,
      name: 'g',
      num: 0,
      stream,
      limit: 0,
      policy: 'discard',
      rate: 10_000,
      log,
    });
    const total = 200_000;
    for (let i = 0; i < total / 1000; i++) guestOut.write(Buffer.alloc(1000, 65));
    guestOut.end();
    await new Promise((resolve) => hub.once('closed', resolve));
    await log.close();
    const written = fs.statSync(file).size;
    expect(hub.counters.fromGuest).toBe(total);
    expect(hub.counters.dropped).toBeGreaterThan(0);
    expect(written + hub.counters.dropped).toBe(total);
  });

  it('disconnects a viewer that falls behind without slowing the others', async () => {
    const { stream, guestOut } = fakeConsole();
    const hub = new ConsoleHub({
      domid: 1,
      name: 'g',
      num: 0,
      stream,
      limit: 0,
      policy: 'keep',
      viewerQueueBytes: 10_000,
    });
    const stuck = new Duplex({ read() {}, write() {} }); // never calls back: its queue only grows
    const fast = fakeViewer();
    hub.attach(stuck, { mode: 'ro', label: 'stuck' });
    hub.attach(fast.peer, { mode: 'ro', label: 'fast' });
    for (let i = 0; i < 100; i++) guestOut.write(Buffer.alloc(1000, 66));
    await tick();
    expect(hub.counters.slowViewers).toBe(1);
    expect(hub.viewerList().map((v) => v.label)).toEqual(['fast']);
    expect(fast.received().length).toBe(100_000);
  });
});
