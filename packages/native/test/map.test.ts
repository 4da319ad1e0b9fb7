import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isXenconsError } from '@xencons/errors';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { binding, indexUrl, native, runNode, tempDir } from './support.js';

/** Lines of /proc/self/maps naming `path`: proves a mapping exists (or is really gone). */
function mapsOf(path: string): number {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => l.endsWith(path)).length;
}

function expectCode(fn: () => unknown, code: string, message?: RegExp) {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(isXenconsError(caught, code), String(caught)).toBe(true);
  if (message) expect((caught as Error).message).toMatch(message);
  return caught as Error & { errno?: number; syscall?: string; path?: string };
}

native.describe('page mapping', () => {
  let dir: ReturnType<typeof tempDir>;
  let file: string;
  const b = () => binding();
  let page: number;

  beforeEach(() => {
    dir = tempDir();
    file = join(dir.path, 'pages.bin');
    page = b().pageSize();
    writeFileSync(file, Buffer.alloc(3 * page));
  });
  afterEach(() => dir.remove());

  it('reports a power-of-two page size', () => {
    expect(page).toBeGreaterThanOrEqual(4096);
    expect(page & (page - 1)).toBe(0);
  });

  it('maps a file MAP_SHARED read-write: writes through the buffer reach the file', () => {
    const ab = b().mapFile(file, 0, page, true);
    try {
      expect(ab.byteLength).toBe(page);
      expect(b().isMapped(ab)).toBe(true);
      new Uint8Array(ab).set([0xde, 0xad, 0xbe, 0xef], 100);
      expect([...readFileSync(file).subarray(100, 104)]).toEqual([0xde, 0xad, 0xbe, 0xef]);
      expect(mapsOf(file)).toBe(1);
    } finally {
      b().unmap(ab);
    }
  });

  it('two mappings of the same file see each other’s writes', () => {
    const one = b().mapFile(file, 0, page, true);
    const two = b().mapFile(file, 0, page, true);
    try {
      new DataView(one).setUint32(8, 0x12345678, true);
      expect(new DataView(two).getUint32(8, true)).toBe(0x12345678);
      new Uint8Array(two)[page - 1] = 7;
      expect(new Uint8Array(one)[page - 1]).toBe(7);
    } finally {
      b().unmap(one);
      b().unmap(two);
    }
  });

  it('maps read-only and reads what the file holds, at a page offset', () => {
    const content = Buffer.alloc(3 * page);
    content.write('page one', page);
    writeFileSync(file, content);
    const ab = b().mapFile(file, page, page, false);
    try {
      expect(Buffer.from(ab, 0, 8).toString()).toBe('page one');
      // (Writing through a read-only mapping would fault like in C: never done here.)
    } finally {
      b().unmap(ab);
    }
  });

  it('rejects bad offsets and lengths with ERR_INVALID_ARG', () => {
    const before = b().mappingCount();
    expectCode(() => b().mapFile(file, 100, page, true), 'ERR_INVALID_ARG', /page size/);
    expectCode(() => b().mapFile(file, 0, 0, true), 'ERR_INVALID_ARG', /greater than 0/);
    expectCode(() => b().mapFile(file, -page, page, true), 'ERR_INVALID_ARG');
    expectCode(() => b().mapFile(file, 0.5, page, true), 'ERR_INVALID_ARG');
    expectCode(() => b().mapFile(file, 0, Number.NaN, true), 'ERR_INVALID_ARG');
    expectCode(() => b().mapFile(file, 2 * page, 2 * page, true), 'ERR_INVALID_ARG', /SIGBUS/);
    // @ts-expect-error: wrong type on purpose
    expectCode(() => b().mapFile(file, 0, page, 'yes'), 'ERR_INVALID_ARG', /boolean/);
    expectCode(() => b().mapFile(`${file}\0x`, 0, page, true), 'ERR_INVALID_ARG', /NUL/);
    expect(b().mappingCount()).toBe(before);
  });

  it('open errors carry code, errno, syscall and path', () => {
    const missing = join(dir.path, 'missing');
    const err = expectCode(() => b().mapFile(missing, 0, page, false), 'ENOENT');
    expect(err.errno).toBe(2);
    expect(err.syscall).toBe('open');
    expect(err.path).toBe(missing);
  });

  it('explicit unmap detaches: byteLength 0, views length 0, second unmap false', () => {
    const before = b().mappingCount();
    const ab = b().mapFile(file, 0, 2 * page, true);
    const view = new Uint8Array(ab, 16, 32);
    const dv = new DataView(ab);
    expect(b().mappingCount()).toBe(before + 1);
    expect(b().unmap(ab)).toBe(true);
    expect(ab.byteLength).toBe(0);
    expect(view.length).toBe(0);
    expect(view[0]).toBeUndefined();
    expect(() => dv.getUint8(0)).toThrow(TypeError);
    expect(b().isMapped(ab)).toBe(false);
    expect(b().unmap(ab)).toBe(false);
    expect(b().mappingCount()).toBe(before);
    expect(mapsOf(file)).toBe(0);
    // The native ring functions see an empty page and refuse instead of touching freed memory.
    expectCode(() => b().ringQueued(view, 2048, 3084, 3080), 'ERR_INVALID_ARG', /outside the page/);
  });

  it('unmap of a buffer it did not map returns false; of a non-buffer throws', () => {
    expect(b().unmap(new ArrayBuffer(16))).toBe(false);
    expect(b().isMapped(new ArrayBuffer(16))).toBe(false);
    // @ts-expect-error: wrong type on purpose
    expectCode(() => b().unmap(new Uint8Array(4)), 'ERR_INVALID_ARG', /ArrayBuffer/);
  });

  it('maps an fd opened by JS; the mapping outlives closing the fd', () => {
    const fd = openSync(file, 'r+');
    const ab = b().mapFd(fd, page, page, true);
    closeSync(fd);
    try {
      Buffer.from(ab).write('via fd', 0);
      expect(
        readFileSync(file)
          .subarray(page, page + 6)
          .toString(),
      ).toBe('via fd');
    } finally {
      expect(b().unmap(ab)).toBe(true);
    }
  });

  it('mapFd errors: bad fd is EBADF from mmap, a read-only fd cannot be mapped writable', () => {
    expectCode(() => b().mapFd(-1, 0, page, true), 'ERR_INVALID_ARG');
    const fd = openSync(file, 'r');
    try {
      const err = expectCode(() => b().mapFd(fd, 0, page, true), 'EACCES');
      expect(err.syscall).toBe('mmap');
      const ro = b().mapFd(fd, 0, page, false);
      expect(b().unmap(ro)).toBe(true);
    } finally {
      closeSync(fd);
    }
    const closed = openSync(file, 'r');
    closeSync(closed);
    expect(expectCode(() => b().mapFd(closed, 0, page, false), 'EBADF').syscall).toBe('mmap');
  });

  it('garbage collection unmaps mappings that were never unmapped', () => {
    const code = `
      const { loadNative } = await import(${JSON.stringify(indexUrl)});
      const { readFileSync } = await import('node:fs');
      const b = loadNative();
      const file = ${JSON.stringify(file)};
      const maps = () => readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => l.endsWith(file)).length;
      (() => { for (let i = 0; i < 200; i++) new Uint8Array(b.mapFile(file, 0, b.pageSize(), true))[0] = i; })();
      const before = b.mappingCount();
      const mapsBefore = maps();
      for (let i = 0; i < 20 && b.mappingCount() > 0; i++) {
        globalThis.gc();
        await new Promise((r) => setImmediate(r));
      }
      console.log(JSON.stringify({ before, after: b.mappingCount(), mapsBefore, mapsAfter: maps() }));
    `;
    const r = runNode(code, { args: ['--expose-gc'] });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, number>;
    expect(out.before).toBe(200);
    expect(out.mapsBefore).toBeGreaterThan(0);
    expect(out.after).toBeLessThan(10);
    expect(out.mapsAfter).toBeLessThan(10);
    expect(readFileSync(file)[0]).toBe(199);
  });

  it('GC after an explicit unmap does not unmap a later mapping at the same address', () => {
    const code = `
      const { loadNative } = await import(${JSON.stringify(indexUrl)});
      const b = loadNative();
      const file = ${JSON.stringify(file)};
      const ps = b.pageSize();
      let survivors = [];
      for (let i = 0; i < 50; i++) {
        const old = b.mapFile(file, 0, ps, true);
        b.unmap(old);                                  // freed address, buffer still reachable
        const fresh = b.mapFile(file, 0, ps, true);    // very likely the same address
        survivors.push(fresh);
      }
      globalThis.gc();
      for (let i = 0; i < 10; i++) { globalThis.gc(); await new Promise((r) => setImmediate(r)); }
      // Every fresh mapping must still be live and usable.
      let ok = 0;
      for (const s of survivors) { new Uint8Array(s)[1] = 42; if (b.isMapped(s)) ok++; }
      console.log(JSON.stringify({ ok, count: b.mappingCount() }));
    `;
    const r = runNode(code, { args: ['--expose-gc'] });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ ok: 50, count: 50 });
  });
});
