import { readSync, writeSync } from 'node:fs';
import { isXenconsError } from '@xencons/errors';
import { afterEach, beforeEach, expect, it } from 'vitest';
import {
  binding,
  type Fifo,
  indexUrl,
  makeFifos,
  native,
  runNode,
  sleep,
  tempDir,
  waitFor,
} from './support.js';

const POLLIN = 1;
const POLLOUT = 4;

native.describe('fd readiness on the native poll thread', () => {
  const b = () => binding();
  let dir: ReturnType<typeof tempDir>;
  let fifos: Fifo[] = [];
  let watches: number[] = [];

  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(() => {
    // unwatch before close: the caller's job, as documented.
    for (const id of watches) b().unwatchFd(id);
    watches = [];
    for (const f of fifos) f.close();
    fifos = [];
    dir.remove();
  });

  function watch(fd: number, cb: (events: number) => void, interest?: number): number {
    const id = b().watchFd(fd, cb, interest);
    watches.push(id);
    return id;
  }

  it('calls back once when readable, and not again until rearmed', async () => {
    fifos = makeFifos(dir.path, 1);
    const f = fifos[0]!;
    const events: number[] = [];
    const id = watch(f.readFd, (ev) => events.push(ev));
    await sleep(50);
    expect(events).toEqual([]); // nothing written yet
    writeSync(f.writeFd, 'x');
    await waitFor(() => events.length === 1, 5000, 'first callback');
    expect(events[0]! & POLLIN).toBe(POLLIN);
    // Still readable (nothing was read), but the watch is disarmed: no storm.
    writeSync(f.writeFd, 'y');
    await sleep(100);
    expect(events.length).toBe(1);
    b().rearmFd(id);
    await waitFor(() => events.length === 2, 5000, 'callback after rearm');
    await sleep(50);
    expect(events.length).toBe(2);
  });

  it('POLLOUT: a full FIFO calls back once a reader makes room; rearmFd changes the interest', async () => {
    fifos = makeFifos(dir.path, 1);
    const f = fifos[0]!;
    b().fdSetBlocking(f.writeFd, false);
    const chunk = Buffer.alloc(4096, 120);
    let filled = 0;
    for (;;) {
      try {
        filled += writeSync(f.writeFd, chunk);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EAGAIN') break;
        throw error;
      }
    }
    expect(filled).toBeGreaterThan(0);
    const events: number[] = [];
    const id = watch(f.writeFd, (ev) => events.push(ev), POLLOUT);
    await sleep(50);
    expect(events).toEqual([]); // full: no room yet
    const sink = Buffer.alloc(65536);
    let drained = 0;
    while (drained < filled) drained += readSync(f.readFd, sink);
    await waitFor(() => events.length === 1, 5000, 'room to write');
    expect(events[0]! & POLLOUT).toBe(POLLOUT);
    // Armed for reading only, the write end never fires.
    b().rearmFd(id, POLLIN);
    await sleep(50);
    expect(events.length).toBe(1);
    // Changing an armed watch's interest to POLLOUT: there is room, so it fires.
    b().rearmFd(id, POLLOUT);
    await waitFor(() => events.length === 2, 5000, 'the changed interest');
    for (const bad of [0, 8, POLLIN | 0x100]) {
      expect(() => b().rearmFd(id, bad)).toThrow(/events must be POLLIN, POLLOUT or both/);
    }
  });

  it('300 FIFOs watched at once all fire, each once', async () => {
    fifos = makeFifos(dir.path, 300);
    const fired = new Map<number, number>();
    const ids = fifos.map((f, i) => watch(f.readFd, () => fired.set(i, (fired.get(i) ?? 0) + 1)));
    expect(new Set(ids).size).toBe(300);
    for (const f of fifos) writeSync(f.writeFd, 'ready');
    await waitFor(() => fired.size === 300, 10_000, 'all 300 callbacks');
    await sleep(50);
    expect([...fired.values()].every((n) => n === 1)).toBe(true);
  });

  it('unwatchFd stops callbacks, also for an event already in flight', async () => {
    fifos = makeFifos(dir.path, 2);
    const [a, c] = fifos as [Fifo, Fifo];
    let aCalls = 0;
    let cCalls = 0;
    const ida = b().watchFd(a.readFd, () => aCalls++);
    watch(c.readFd, () => cCalls++);
    b().unwatchFd(ida);
    b().unwatchFd(ida); // idempotent
    writeSync(a.writeFd, 'x');
    // Make one queued right before unwatching: write, then unwatch synchronously.
    const idb = b().watchFd(a.readFd, () => aCalls++);
    writeSync(a.writeFd, 'y');
    // Block this thread (no await) so the poll thread queues the call, then unwatch before the
    // queued call can run: call_js must find the watch gone and drop it.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    b().unwatchFd(idb);
    writeSync(c.writeFd, 'z');
    await waitFor(() => cCalls === 1, 5000, 'the other watch');
    await sleep(50);
    expect(aCalls).toBe(0);
    expect(() => b().rearmFd(ida)).toThrow(/no active watch/);
  });

  it('watching something epoll refuses throws with the syscall', () => {
    let err: unknown;
    try {
      b().watchFd(0x7fff_fff0, () => {});
    } catch (e) {
      err = e;
    }
    expect(isXenconsError(err, 'EBADF')).toBe(true);
    expect((err as { syscall: string }).syscall).toBe('epoll_ctl(EPOLL_CTL_ADD)');
    // @ts-expect-error: wrong type on purpose
    expect(() => b().watchFd(0, 'nope')).toThrow(/function/);
  });

  it('a process whose only watch is unref’ed exits by itself; a ref’ed one keeps it alive', () => {
    fifos = makeFifos(dir.path, 1);
    const path = `${dir.path}/fifo-0`;
    const script = (unref: boolean) => `
      const { openSync } = await import('node:fs');
      const { loadNative } = await import(${JSON.stringify(indexUrl)});
      const b = loadNative();
      const fd = openSync(${JSON.stringify(path)}, 'r+');
      const id = b.watchFd(fd, () => {});
      ${unref ? 'b.unrefFd(id); b.refFd(id); b.unrefFd(id);' : ''}
      console.log('watching');
    `;
    const idle = runNode(script(true), { timeout: 10_000 });
    expect(idle.signal).toBeNull();
    expect(idle.status, idle.stderr).toBe(0);
    expect(idle.stdout).toContain('watching');
    const busy = runNode(script(false), { timeout: 4000 });
    expect(busy.stdout).toContain('watching');
    expect(busy.signal).toBe('SIGTERM'); // still running when the timeout killed it
  });

  it('an exception thrown by a callback reaches uncaughtException (not swallowed)', () => {
    fifos = makeFifos(dir.path, 1);
    const path = `${dir.path}/fifo-0`;
    const script = (handled: boolean) => `
      const { openSync, writeSync } = await import('node:fs');
      const { loadNative } = await import(${JSON.stringify(indexUrl)});
      const b = loadNative();
      const fd = openSync(${JSON.stringify(path)}, 'r+');
      const id = b.watchFd(fd, () => { throw new Error('boom from a watch callback'); });
      ${handled ? "process.on('uncaughtException', (e) => { console.log('caught:', e.message); b.unwatchFd(id); });" : ''}
      writeSync(fd, 'x');
    `;
    const handled = runNode(script(true), { timeout: 10_000 });
    expect(handled.status, handled.stderr).toBe(0);
    expect(handled.stdout.trim()).toBe('caught: boom from a watch callback');
    const unhandled = runNode(script(false), { timeout: 10_000 });
    expect(unhandled.signal).toBeNull();
    expect(unhandled.status).toBe(1);
    expect(unhandled.stderr).toContain('boom from a watch callback');
  });

  it('a worker that watches and exits is torn down cleanly; watches keep working here', () => {
    fifos = makeFifos(dir.path, 2);
    const code = `
      const { Worker } = await import('node:worker_threads');
      const { openSync, writeSync } = await import('node:fs');
      const { loadNative } = await import(${JSON.stringify(indexUrl)});
      const paths = ${JSON.stringify([`${dir.path}/fifo-0`, `${dir.path}/fifo-1`])};
      // (eval'd worker code is an ES module here, like its parent)
      const w = new Worker(\`
        const { openSync } = await import('node:fs');
        const { loadNative } = await import(${JSON.stringify(indexUrl)});
        const b = loadNative();
        const fd = openSync(${JSON.stringify(`${dir.path}/fifo-0`)}, 'r+');
        b.watchFd(fd, () => {});   // left watched and ref'ed: the env cleanup hook must cope
        process.exit(0);
      \`, { eval: true });
      await new Promise((r) => w.on('exit', r));
      const b = loadNative();
      const fd = openSync(paths[1], 'r+');
      const id = b.watchFd(fd, (ev) => { console.log('fired', ev); b.unwatchFd(id); });
      writeSync(fd, 'x');
    `;
    const r = runNode(code, { timeout: 10_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('fired 1');
  });
});
