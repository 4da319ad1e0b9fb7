// Real /dev/xen devices are absent here (the QEMU harness runs them under Xen). What can be
// proven on any Linux: every device call reaches the kernel with the right ioctl and turns the
// errno into a typed error naming it; the read/write paths of evtchn work on a FIFO; failed
// device mappings leave nothing behind; panics never cross the FFI.
import { closeSync, openSync, readSync } from 'node:fs';
import { isXenconsError } from '@xencons/errors';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { binding, type Fifo, makeFifos, native, tempDir } from './support.js';

type NativeError = Error & { code: string; errno?: number; syscall?: string };

function caught(fn: () => unknown): NativeError {
  try {
    fn();
  } catch (e) {
    expect(isXenconsError(e), String(e)).toBe(true);
    return e as NativeError;
  }
  throw new Error('expected a throw');
}

native.describe('Xen device calls on a non-Xen fd', () => {
  const b = () => binding();
  let devnull: number;
  beforeAll(() => {
    devnull = openSync('/dev/null', 'r+');
  });
  afterAll(() => closeSync(devnull));

  const cases: [string, string, (fd: number) => unknown][] = [
    [
      'evtchnBindInterdomain',
      'IOCTL_EVTCHN_BIND_INTERDOMAIN',
      (fd) => b().evtchnBindInterdomain(fd, 1, 2),
    ],
    [
      'evtchnBindUnboundPort',
      'IOCTL_EVTCHN_BIND_UNBOUND_PORT',
      (fd) => b().evtchnBindUnboundPort(fd, 1),
    ],
    ['evtchnBindVirq', 'IOCTL_EVTCHN_BIND_VIRQ', (fd) => b().evtchnBindVirq(fd, 3)],
    ['evtchnUnbind', 'IOCTL_EVTCHN_UNBIND', (fd) => b().evtchnUnbind(fd, 5)],
    ['evtchnNotify', 'IOCTL_EVTCHN_NOTIFY', (fd) => b().evtchnNotify(fd, 5)],
    ['evtchnReset', 'IOCTL_EVTCHN_RESET', (fd) => b().evtchnReset(fd)],
    ['evtchnRestrictDomid', 'IOCTL_EVTCHN_RESTRICT_DOMID', (fd) => b().evtchnRestrictDomid(fd, 1)],
    ['gntdevMap', 'IOCTL_GNTDEV_MAP_GRANT_REF', (fd) => b().gntdevMap(fd, 1, [8], true)],
    ['gntallocShare', 'IOCTL_GNTALLOC_ALLOC_GREF', (fd) => b().gntallocShare(fd, 1, 1, true)],
  ];

  for (const [name, ioctl, call] of cases) {
    it(`${name} throws ENOTTY naming ioctl(${ioctl})`, () => {
      const before = b().mappingCount();
      const err = caught(() => call(devnull));
      expect(err.code).toBe('ENOTTY');
      expect(err.errno).toBe(25);
      expect(err.syscall).toBe(`ioctl(${ioctl})`);
      expect(err.message).toBe(`ENOTTY: inappropriate ioctl for device, ioctl(${ioctl})`);
      expect(b().mappingCount()).toBe(before);
    });
  }

  it('privcmdMapForeign fails at the reserving mmap on a device that cannot be mapped', () => {
    const before = b().mappingCount();
    const err = caught(() => b().privcmdMapForeign(devnull, 1, [0x1234], true));
    expect(err.code).toBe('ENODEV');
    expect(err.syscall).toBe('mmap');
    expect(b().mappingCount()).toBe(before);
  });

  it('a closed fd gives EBADF; arguments are validated before any syscall', () => {
    const fd = openSync('/dev/null', 'r');
    closeSync(fd);
    expect(caught(() => b().evtchnNotify(fd, 1)).code).toBe('EBADF');
    expect(caught(() => b().evtchnNotify(-1, 1)).code).toBe('ERR_INVALID_ARG');
    expect(caught(() => b().evtchnBindInterdomain(devnull, 0x10000, 1)).code).toBe(
      'ERR_INVALID_ARG',
    );
    expect(caught(() => b().gntdevMap(devnull, 1, [], true)).message).toMatch(
      /1\.\.=4096 elements/,
    );
    expect(caught(() => b().gntdevMap(devnull, 1, [-1], true)).message).toMatch(/refs\[0\]/);
    expect(caught(() => b().gntallocShare(devnull, 1, 0, true)).code).toBe('ERR_INVALID_ARG');
    // @ts-expect-error: wrong type on purpose
    expect(caught(() => b().evtchnPending(devnull, new Uint8Array(4))).message).toMatch(
      /Uint32Array/,
    );
  });

  it('setUnmapNotify refuses buffers that are not grant mappings', () => {
    expect(caught(() => b().setUnmapNotify(new ArrayBuffer(8), 0, 1, 0)).code).toBe(
      'ERR_INVALID_ARG',
    );
  });

  it('testPanic throws ERR_NATIVE_PANIC and the process carries on', () => {
    for (let i = 0; i < 3; i++) {
      const err = caught(() => b().testPanic());
      expect(err.code).toBe('ERR_NATIVE_PANIC');
      expect(err.message).toMatch(/deliberate panic/);
    }
    expect(b().pageSize()).toBeGreaterThan(0);
  });
});

native.describe('evtchn read/write paths (on a FIFO, which behaves like the device here)', () => {
  const b = () => binding();
  let dir: ReturnType<typeof tempDir>;
  let fifo: Fifo;
  beforeAll(() => {
    dir = tempDir();
    [fifo] = makeFifos(dir.path, 1) as [Fifo];
  });
  afterAll(() => {
    fifo.close();
    dir.remove();
  });

  it('evtchnPending returns 0 at once when nothing is pending, even on a blocking fd', () => {
    // The read end opened O_RDWR blocks on read; evtchnPending must not.
    const blocking = openSync(`${dir.path}/fifo-0`, 'r+');
    try {
      expect(b().evtchnPending(blocking, new Uint32Array(8))).toBe(0);
    } finally {
      closeSync(blocking);
    }
  });

  it('evtchnUnmask writes the port as one native-endian u32; evtchnPending reads ports back', () => {
    b().evtchnUnmask(fifo.writeFd, 0x01020304);
    b().evtchnUnmask(fifo.writeFd, 7);
    const out = new Uint32Array(8);
    expect(b().evtchnPending(fifo.readFd, out)).toBe(2);
    expect([...out.subarray(0, 2)]).toEqual([0x01020304, 7]);
    expect(b().evtchnPending(fifo.readFd, out)).toBe(0);
    expect(b().evtchnPending(fifo.readFd, new Uint32Array(0))).toBe(0);
  });

  it('evtchnPending reads no more than fits in `out`', () => {
    for (const p of [1, 2, 3]) b().evtchnUnmask(fifo.writeFd, p);
    const out = new Uint32Array(2);
    expect(b().evtchnPending(fifo.readFd, out)).toBe(2);
    expect([...out]).toEqual([1, 2]);
    expect(b().evtchnPending(fifo.readFd, out)).toBe(1);
    expect(out[0]).toBe(3);
    const rest = Buffer.alloc(4);
    expect(() => readSync(fifo.readFd, rest)).toThrow(/EAGAIN/);
  });
});
