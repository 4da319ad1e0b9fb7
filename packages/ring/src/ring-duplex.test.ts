import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { isXenconsError } from '@xencons/errors';
import { describe, expect, it } from 'vitest';
import { XENCONS_INTERFACE } from './console-layout.js';
import { consoleBackendRings, consoleFrontendRings } from './console-rings.js';
import { RingDuplex, type RingSignal } from './ring-duplex.js';
import { pseudoRandomBytes } from './test-support.js';

/** Two ends of an in-memory event channel; a notification arrives on a later turn, as a real one does. */
function signalPair(): [RingSignal & { sent: () => number }, RingSignal & { sent: () => number }] {
  const handlers: [Set<() => void>, Set<() => void>] = [new Set(), new Set()];
  const counts = [0, 0];
  const end = (mine: 0 | 1) => ({
    notify() {
      counts[mine]!++;
      setImmediate(() => {
        for (const handler of handlers[mine === 0 ? 1 : 0]) handler();
      });
    },
    subscribe(handler: () => void) {
      handlers[mine].add(handler);
      return () => handlers[mine].delete(handler);
    },
    sent: () => counts[mine]!,
  });
  return [end(0), end(1)];
}

function consolePair(page = new ArrayBuffer(4096)) {
  const [backSignal, frontSignal] = signalPair();
  const back = consoleBackendRings(page);
  const front = consoleFrontendRings(page);
  return {
    page,
    backend: new RingDuplex({ rx: back.out, tx: back.in, signal: backSignal }),
    frontend: new RingDuplex({ rx: front.in, tx: front.out, signal: frontSignal }),
    backSignal,
  };
}

function sha(chunks: Uint8Array[]): string {
  const hash = createHash('sha256');
  for (const chunk of chunks) hash.update(chunk);
  return hash.digest('hex');
}

/** Reads `bytes` bytes (without ending the stream, unlike breaking out of `for await`). */
function collect(stream: RingDuplex, bytes: number): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  let got = 0;
  return new Promise((resolve) => {
    const onData = (chunk: Uint8Array) => {
      chunks.push(chunk);
      got += chunk.length;
      if (got < bytes) return;
      stream.off('data', onData);
      stream.pause();
      resolve(chunks);
    };
    stream.on('data', onData);
  });
}

describe('RingDuplex', () => {
  it('carries a megabyte each way through 2 KiB and 1 KiB rings, in order', async () => {
    const { backend, frontend } = consolePair();
    const out = pseudoRandomBytes(1 << 20, 7);
    const input = pseudoRandomBytes(1 << 20, 8);
    const received = collect(backend, out.length);
    const typed = collect(frontend, input.length);
    for (let at = 0; at < out.length; at += 3000) frontend.write(out.subarray(at, at + 3000));
    backend.write(input);
    expect(sha(await received)).toBe(sha([out]));
    expect(sha(await typed)).toBe(sha([input]));
  });

  it('holds a writer back while nobody reads: backpressure, never a drop', async () => {
    const { backend, frontend } = consolePair();
    const data = pseudoRandomBytes(64 * 1024, 9);
    let done = false;
    frontend.write(data, () => {
      done = true;
    });
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(done).toBe(false);
    expect(frontend.bytesOut).toBe(XENCONS_INTERFACE.out.size);
    const chunks = await collect(backend, data.length);
    expect(sha(chunks)).toBe(sha([data]));
    await new Promise((resolve) => setImmediate(resolve));
    expect(done).toBe(true);
  });

  it('ends with ERR_RING_CORRUPT on hostile indices and writes nothing', async () => {
    const { page, backend, backSignal } = consolePair();
    const words = new Uint32Array(page);
    words[XENCONS_INTERFACE.out.prodOffset / 4] = 0x10000; // prod - cons > ring size
    const before = new Uint8Array(page.slice(0));
    const failed = once(backend, 'error');
    backend.resume();
    backSignal.notify();
    const [error] = await failed;
    expect(isXenconsError(error, 'ERR_RING_CORRUPT')).toBe(true);
    expect(new Uint8Array(page)).toEqual(before);
  });
});
