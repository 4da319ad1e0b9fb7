// Compiles C against the system's Xen headers and compares every ioctl number, struct size and
// field offset with what the addon uses, so they cannot drift. Two headers sets, compiled
// separately because they share include guards: libxen-dev's <xen/sys/*.h> (what libxenctrl
// builds against) and linux-libc-dev's <xen/*.h> (the kernel uapi itself).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { commandExists, requirement } from '@xencons/test-utils';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { binding, native, tempDir } from './support.js';

const HEADERS = ['evtchn', 'gntdev', 'gntalloc', 'privcmd'];
const missing = !commandExists('gcc')
  ? 'gcc not found'
  : HEADERS.map((h) => `/usr/include/xen/sys/${h}.h`).find((p) => !existsSync(p))
    ? 'libxen-dev headers (/usr/include/xen/sys/*.h) not installed'
    : HEADERS.map((h) => `/usr/include/xen/${h}.h`).find((p) => !existsSync(p))
      ? 'linux-libc-dev Xen headers (/usr/include/xen/*.h) not installed'
      : null;
// Needs the addon as well: without it, skip (or fail in CI) for that reason instead.
const toolchain = native.missing ? native : requirement('gcc and libxen-dev', missing);

/** Every struct the addon uses, and the constants it relies on (beyond ioctl numbers). */
const EXPECTED_STRUCTS = [
  'ioctl_evtchn_bind_virq',
  'ioctl_evtchn_bind_interdomain',
  'ioctl_evtchn_bind_unbound_port',
  'ioctl_evtchn_unbind',
  'ioctl_evtchn_notify',
  'ioctl_evtchn_restrict_domid',
  'ioctl_gntdev_grant_ref',
  'ioctl_gntdev_map_grant_ref',
  'ioctl_gntdev_unmap_grant_ref',
  'ioctl_gntdev_unmap_notify',
  'ioctl_gntalloc_alloc_gref',
  'ioctl_gntalloc_dealloc_gref',
  'ioctl_gntalloc_unmap_notify',
  'privcmd_mmapbatch_v2',
];
const XEN_CONSTANTS = [
  'UNMAP_NOTIFY_CLEAR_BYTE',
  'UNMAP_NOTIFY_SEND_EVENT',
  'GNTALLOC_FLAG_WRITABLE',
];

interface Measured {
  ioctls: Record<string, number>;
  layouts: Record<string, Record<string, number>>;
  constants: Record<string, number>;
}

/** A C program printing, as JSON, the values of everything the binding claims. */
function program(includes: string[]): string {
  const b = binding();
  const out: string[] = [];
  const emit = (s: string) => out.push(`  fputs(${JSON.stringify(s)}, stdout);`);
  emit('{"ioctls":{');
  Object.keys(b.ioctls).forEach((name, i) => {
    emit(`${i ? ',' : ''}"${name}":`);
    out.push(`  printf("%lu", (unsigned long)(${name}));`);
  });
  emit('},"layouts":{');
  Object.entries(b.layouts).forEach(([struct, fields], i) => {
    emit(`${i ? ',' : ''}"${struct}":{`);
    Object.keys(fields).forEach((field, j) => {
      emit(`${j ? ',' : ''}"${field}":`);
      const expr =
        field === 'size' ? `sizeof(struct ${struct})` : `offsetof(struct ${struct}, ${field})`;
      out.push(`  printf("%zu", (size_t)(${expr}));`);
    });
    emit('}');
  });
  emit('},"constants":{');
  XEN_CONSTANTS.forEach((name, i) => {
    emit(`${i ? ',' : ''}"${name}":`);
    out.push(`  printf("%lu", (unsigned long)(${name}));`);
  });
  emit('}}');
  return [
    '#include <stddef.h>',
    '#include <stdint.h>',
    '#include <stdio.h>',
    '#include <sys/ioctl.h>',
    '#include <xen/xen.h>',
    ...includes.map((h) => `#include <${h}>`),
    'int main(void) {',
    ...out,
    '  return 0;',
    '}',
    '',
  ].join('\n');
}

toolchain.describe('ioctl numbers and struct layouts match the system headers', () => {
  let dir: ReturnType<typeof tempDir>;
  beforeAll(() => {
    dir = tempDir();
  });
  afterAll(() => dir.remove());

  function measure(name: string, includes: string[], extraFlags: string[] = []): Measured {
    const src = join(dir.path, `${name}.c`);
    const exe = join(dir.path, name);
    writeFileSync(src, program(includes));
    const cc = spawnSync('gcc', ['-Wall', '-Werror', ...extraFlags, '-o', exe, src], {
      encoding: 'utf8',
    });
    expect(cc.status, cc.stderr).toBe(0);
    const run = spawnSync(exe, { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    return JSON.parse(run.stdout) as Measured;
  }

  function compare(measured: Measured) {
    const b = binding();
    expect({ ...b.ioctls }).toEqual(measured.ioctls);
    expect(JSON.parse(JSON.stringify(b.layouts))).toEqual(measured.layouts);
    for (const name of XEN_CONSTANTS) expect(b.constants[name]).toBe(measured.constants[name]);
  }

  it('the binding covers every struct the device calls use', () => {
    expect(Object.keys(binding().layouts).sort()).toEqual([...EXPECTED_STRUCTS].sort());
    expect(binding().layouts.ioctl_gntdev_map_grant_ref).toEqual({
      size: 24,
      count: 0,
      pad: 4,
      index: 8,
      refs: 16,
    });
    expect(binding().ioctls.IOCTL_EVTCHN_BIND_INTERDOMAIN).toBe(0x00084501);
  });

  it("libxen-dev's <xen/sys/*.h>", () => {
    compare(
      measure(
        'sys-headers',
        HEADERS.map((h) => `xen/sys/${h}.h`),
      ),
    );
  });

  it("linux-libc-dev's <xen/*.h> (the kernel uapi)", () => {
    // <xen/privcmd.h> includes the kernel-internal <xen/interface/xen.h>; point it at <xen/xen.h>.
    const shim = join(dir.path, 'shim', 'xen', 'interface');
    mkdirSync(shim, { recursive: true });
    writeFileSync(join(shim, 'xen.h'), '#include <xen/xen.h>\n');
    const includes = ['xen/grant_table.h', ...HEADERS.map((h) => `xen/${h}.h`)];
    compare(measure('uapi-headers', includes, ['-I', join(dir.path, 'shim')]));
  });
});

native.describe('layouts without a compiler', () => {
  it('match the values in xen-protocols.md §5.3-5.6', () => {
    const { ioctls, layouts } = binding();
    expect(ioctls).toMatchObject({
      IOCTL_EVTCHN_BIND_VIRQ: 0x00044500,
      IOCTL_EVTCHN_BIND_INTERDOMAIN: 0x00084501,
      IOCTL_EVTCHN_BIND_UNBOUND_PORT: 0x00044502,
      IOCTL_EVTCHN_UNBIND: 0x00044503,
      IOCTL_EVTCHN_NOTIFY: 0x00044504,
      IOCTL_EVTCHN_RESET: 0x00004505,
      IOCTL_EVTCHN_RESTRICT_DOMID: 0x00024506,
      IOCTL_GNTDEV_MAP_GRANT_REF: 0x00184700,
      IOCTL_GNTDEV_UNMAP_GRANT_REF: 0x00104701,
      IOCTL_GNTDEV_SET_UNMAP_NOTIFY: 0x00104707,
      IOCTL_GNTALLOC_ALLOC_GREF: 0x00184705,
      IOCTL_GNTALLOC_DEALLOC_GREF: 0x00104706,
      IOCTL_GNTALLOC_SET_UNMAP_NOTIFY: 0x00104707,
      IOCTL_PRIVCMD_MMAPBATCH_V2: 0x00205004,
    });
    expect(layouts.ioctl_gntalloc_alloc_gref).toEqual({
      size: 24,
      domid: 0,
      flags: 2,
      count: 4,
      index: 8,
      gref_ids: 16,
    });
    expect(layouts.privcmd_mmapbatch_v2).toEqual({
      size: 32,
      num: 0,
      dom: 4,
      addr: 8,
      arr: 16,
      err: 24,
    });
  });
});
