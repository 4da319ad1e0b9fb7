import { describe, expect, it } from 'vitest';
import { loadOrder, MissingModuleError, moduleDepends, moduleName } from './modules.js';

/** A fake .ko: ELF-ish noise with a .modinfo-like run of NUL-separated key=value strings. */
function ko(fields: string[]): Uint8Array {
  return Buffer.concat([
    Buffer.from('\x7fELF\x02\x01\x01\0\0\0__UNIQUE_ID_depends123\0'),
    Buffer.from(fields.map((f) => `${f}\0`).join('')),
    Buffer.from('\0symtab\0'),
  ]);
}

describe('moduleName', () => {
  it('strips folders and .ko suffixes and treats - as _', () => {
    expect(moduleName('kernel/drivers/xen/xen-evtchn.ko')).toBe('xen_evtchn');
    expect(moduleName('9pnet_virtio.ko.xz')).toBe('9pnet_virtio');
    expect(moduleName('xen-blkfront')).toBe('xen_blkfront');
  });
});

describe('moduleDepends', () => {
  it('reads the depends= modinfo field', () => {
    expect(
      moduleDepends(ko(['license=GPL', 'depends=virtio,9pnet,virtio_ring', 'name=9pnet_virtio'])),
    ).toEqual(['virtio', '9pnet', 'virtio_ring']);
    expect(moduleDepends(ko(['depends=jbd2,mbcache,crc16', 'softdep=pre: crypto-crc32c']))).toEqual(
      ['jbd2', 'mbcache', 'crc16'],
    );
  });

  it('gives no dependencies for an empty or missing field, and ignores symbol names', () => {
    expect(moduleDepends(ko(['depends=', 'name=xen_gntdev']))).toEqual([]);
    expect(moduleDepends(ko(['name=loop']))).toEqual([]);
  });
});

describe('loadOrder', () => {
  const graph: Record<string, string[]> = {
    '9p': ['9pnet', 'fscache', 'netfs'],
    '9pnet': [],
    '9pnet_virtio': ['virtio', '9pnet', 'virtio_ring'],
    fscache: ['netfs'],
    netfs: [],
    virtio: [],
    virtio_ring: [],
    xen_evtchn: [],
  };
  const deps = (n: string) => graph[n] ?? null;

  it('puts dependencies first, each module once', () => {
    const order = loadOrder(['xen-evtchn', '9pnet_virtio', '9p'], deps);
    expect(order).toEqual([
      'xen_evtchn',
      'virtio',
      '9pnet',
      'virtio_ring',
      '9pnet_virtio',
      'netfs',
      'fscache',
      '9p',
    ]);
    for (const [m, ds] of Object.entries(graph)) {
      if (!order.includes(m)) continue;
      for (const d of ds)
        expect(order.indexOf(d), `${d} before ${m}`).toBeLessThan(order.indexOf(m));
    }
  });

  it('names a missing module and who needs it', () => {
    expect(() => loadOrder(['9p'], (n) => (n === 'netfs' ? null : deps(n)))).toThrow(
      MissingModuleError,
    );
    expect(() => loadOrder(['9p'], (n) => (n === 'netfs' ? null : deps(n)))).toThrow(
      /netfs \(needed by (9p|fscache)\)/,
    );
  });

  it('refuses a dependency cycle', () => {
    expect(() => loadOrder(['a'], (n) => (n === 'a' ? ['b'] : ['a']))).toThrow(/cycle/);
  });
});
