import { isXenconsError } from '@xencons/errors';
import { nativeUnavailableReason } from '@xencons/native';
import { requirement } from '@xencons/test-utils';
import { describe, expect, it } from 'vitest';
import type { GnttabError } from './gnttab-errors.js';
import { LinuxGnttab, openLinuxGnttab } from './linux-gnttab.js';

// Real Xen runs this backend in dom0 (tools/xen-qemu, vm/checks/gnttab-checks.mjs). Here: how
// it opens devices, and how it turns what the kernel answers into the shared codes. Xen's own
// answers reach it only as errnos, so the second part replays those errnos (the ones Linux
// gntdev, gntalloc and privcmd return, see the README) through a binding that throws them.

async function caught(p: Promise<unknown>): Promise<GnttabError> {
  try {
    await p;
  } catch (err) {
    expect(isXenconsError(err), String(err)).toBe(true);
    return err as GnttabError;
  }
  throw new Error('expected a rejection');
}

const nativeAddon = requirement('the native addon', nativeUnavailableReason());

nativeAddon.describe('the Linux backend on a machine without Xen', () => {
  it('reports a missing device as ERR_GNTTAB_UNAVAILABLE, on first use', async () => {
    const g = openLinuxGnttab({
      domid: 0,
      devices: { gntalloc: '/nonexistent/gntalloc', gntdev: '/nonexistent/gntdev' },
    });
    expect(g.backend).toBe('linux');
    expect(g.domid).toBe(0);
    const e = await caught(g.share(0));
    expect(e.code).toBe('ERR_GNTTAB_UNAVAILABLE');
    expect(e.details.device).toBe('/nonexistent/gntalloc');
    expect((await caught(g.map(0, [8]))).code).toBe('ERR_GNTTAB_UNAVAILABLE');
    await g.close();
    expect((await caught(g.map(0, [8]))).code).toBe('ERR_GNTTAB_CLOSED');
  });

  it("passes a device that is not Xen's through as ERR_GNTTAB_BACKEND with the errno", async () => {
    const g = openLinuxGnttab({
      devices: { gntalloc: '/dev/null', gntdev: '/dev/null', privcmd: '/dev/null' },
    });
    try {
      const share = await caught(g.share(1));
      expect(share.code).toBe('ERR_GNTTAB_BACKEND');
      expect(share.details.errno).toBe('ENOTTY');
      const map = await caught(g.map(1, [8]));
      expect(map.code).toBe('ERR_GNTTAB_BACKEND');
      expect(map.details.errno).toBe('ENOTTY');
      // privcmd reserves its range with mmap first; /dev/null refuses that.
      const frames = await caught(g.mapFrames(1, [5]));
      expect(frames.code).toBe('ERR_GNTTAB_BACKEND');
      expect(frames.details.errno).toBe('ENODEV');
    } finally {
      await g.close();
    }
  });
});

type Call = { fn: string; writable?: boolean };
const errno = (code: string, syscall: string) =>
  Object.assign(new Error(`${code}: refused, ${syscall}`), { code, syscall });

/** A binding whose device calls answer as scripted; mappings are plain ArrayBuffers. */
function scripted(script: {
  gntdevMap?: (writable: boolean) => ArrayBuffer;
  gntallocShare?: () => { buffer: ArrayBuffer; refs: number[] };
  privcmdMapForeign?: () => ArrayBuffer;
}) {
  const calls: Call[] = [];
  const never = () => {
    throw new Error('not scripted');
  };
  return {
    calls,
    binding: {
      gntdevMap: (_fd: number, _d: number, _r: readonly number[], writable: boolean) => {
        calls.push({ fn: 'gntdevMap', writable });
        return (script.gntdevMap ?? never)(writable);
      },
      gntallocShare: () => {
        calls.push({ fn: 'gntallocShare' });
        return (script.gntallocShare ?? never)();
      },
      privcmdMapForeign: () => {
        calls.push({ fn: 'privcmdMapForeign' });
        return (script.privcmdMapForeign ?? never)();
      },
      unmap: () => {
        calls.push({ fn: 'unmap' });
        return true;
      },
    },
  };
}

const devices = { gntalloc: '/dev/null', gntdev: '/dev/null', privcmd: '/dev/null' };

describe('Linux errnos as the shared codes', () => {
  it('EINVAL from mmap of a writable map that maps read-only: ERR_GNTTAB_READ_ONLY', async () => {
    const s = scripted({
      gntdevMap: (writable) => {
        if (writable) throw errno('EINVAL', 'mmap');
        return new ArrayBuffer(4096);
      },
    });
    const g = new LinuxGnttab(s.binding, { devices });
    const e = await caught(g.map(3, [9]));
    expect(e.code).toBe('ERR_GNTTAB_READ_ONLY');
    expect(e.details).toMatchObject({ domid: 3, refs: [9], errno: 'EINVAL', reason: 'read-only' });
    // The read-only probe was unmapped again.
    expect(s.calls.map((c) => c.fn)).toEqual(['gntdevMap', 'gntdevMap', 'unmap']);
    await g.close();
  });

  it('EINVAL from mmap that no read-only map cures: ERR_GNTTAB_NO_ACCESS, reason unspecified', async () => {
    const s = scripted({
      gntdevMap: () => {
        throw errno('EINVAL', 'mmap');
      },
    });
    const g = new LinuxGnttab(s.binding, { devices });
    const e = await caught(g.map(3, [9]));
    expect(e.code).toBe('ERR_GNTTAB_NO_ACCESS');
    expect(e.details.reason).toBe('unspecified');
    // A read-only map is not probed again.
    const ro = await caught(g.map(3, [9], { writable: false }));
    expect(ro.code).toBe('ERR_GNTTAB_NO_ACCESS');
    expect(s.calls.map((c) => c.writable)).toEqual([true, false, false]);
    await g.close();
  });

  it('other gntdev failures: ENOMEM is ERR_GNTTAB_NO_SPACE, an ioctl EINVAL is ERR_GNTTAB_BACKEND', async () => {
    let answer = errno('ENOMEM', 'ioctl(IOCTL_GNTDEV_MAP_GRANT_REF)');
    const s = scripted({
      gntdevMap: () => {
        throw answer;
      },
    });
    const g = new LinuxGnttab(s.binding, { devices });
    expect((await caught(g.map(3, [9]))).code).toBe('ERR_GNTTAB_NO_SPACE');
    answer = errno('EINVAL', 'ioctl(IOCTL_GNTDEV_MAP_GRANT_REF)');
    expect((await caught(g.map(3, [9]))).code).toBe('ERR_GNTTAB_BACKEND');
    await g.close();
  });

  it('gntalloc ENOSPC (its grant limit) is ERR_GNTTAB_NO_SPACE', async () => {
    const s = scripted({
      gntallocShare: () => {
        throw errno('ENOSPC', 'ioctl(IOCTL_GNTALLOC_ALLOC_GREF)');
      },
    });
    const g = new LinuxGnttab(s.binding, { devices });
    const e = await caught(g.share(1, { count: 2 }));
    expect(e.code).toBe('ERR_GNTTAB_NO_SPACE');
    expect(e.details.grantee).toBe(1);
    await g.close();
  });

  it('privcmd EPERM: ERR_GNTTAB_NOT_PRIVILEGED unless privileged, where it is ERR_GNTTAB_BAD_FRAME', async () => {
    let answer = errno('EPERM', 'ioctl(IOCTL_PRIVCMD_MMAPBATCH_V2)');
    const s = scripted({
      privcmdMapForeign: () => {
        throw answer;
      },
    });
    const guest = new LinuxGnttab(s.binding, { devices, privileged: false });
    expect((await caught(guest.mapFrames(0, [7]))).code).toBe('ERR_GNTTAB_NOT_PRIVILEGED');
    const dom0 = new LinuxGnttab(s.binding, { devices, privileged: true });
    expect((await caught(dom0.mapFrames(5, [7]))).code).toBe('ERR_GNTTAB_BAD_FRAME');
    answer = errno('ESRCH', 'ioctl(IOCTL_PRIVCMD_MMAPBATCH_V2)');
    expect((await caught(dom0.mapFrames(5, [7]))).code).toBe('ERR_GNTTAB_BAD_FRAME');
    await guest.close();
    await dom0.close();
  });

  it('unmaps what it mapped on close, once', async () => {
    const s = scripted({ gntdevMap: () => new ArrayBuffer(8192) });
    const g = new LinuxGnttab(s.binding, { devices });
    const m = await g.map(2, [8, 9], { writable: false });
    expect(m.pages).toHaveLength(2);
    expect(m.refs).toEqual([8, 9]);
    await g.close();
    expect(m.mapped).toBe(false);
    await m.unmap();
    expect(s.calls.filter((c) => c.fn === 'unmap')).toHaveLength(1);
  });
});
