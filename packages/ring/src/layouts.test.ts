import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { commandExists, requirement, withTempDir } from '@xencons/test-utils';
import { describe, expect, it } from 'vitest';
import {
  XENCONS_INTERFACE,
  XENCONSOLE_CONNECTED,
  XENCONSOLE_DISCONNECTED,
} from './console-layout.js';
import { validateRingLayout } from './ring-layout.js';
import * as xs from './xenstore-layout.js';

const HEADERS = ['/usr/include/xen/io/console.h', '/usr/include/xen/io/xs_wire.h'];

function missingToolchain(): string | null {
  if (!commandExists('gcc')) return 'gcc is not installed';
  const absent = HEADERS.filter((h) => !existsSync(h));
  return absent.length === 0 ? null : `${absent.join(', ')} not found (apt-get install libxen-dev)`;
}

// Prints {"structs": {name: {"sizeof": n, "fields": {field: [offset, size]}}}, "constants": {…}}.
// Fields newer than the installed headers are guarded by macros those versions introduced.
const PROGRAM = String.raw`
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <xen/io/console.h>
#include <xen/io/xs_wire.h>

static const char *sep = "";
#define FIELD(s, f) do { printf("%s\"%s\":[%zu,%zu]", sep, #f, offsetof(struct s, f), \
    sizeof(((struct s *)0)->f)); sep = ","; } while (0)
#define CONST(name) do { printf("%s\"%s\":%ld", sep, #name, (long)(name)); sep = ","; } while (0)

int main(void) {
  printf("{\"structs\":{\"xencons_interface\":{\"sizeof\":%zu,\"fields\":{",
         sizeof(struct xencons_interface));
  sep = "";
  FIELD(xencons_interface, in);
  FIELD(xencons_interface, out);
  FIELD(xencons_interface, in_cons);
  FIELD(xencons_interface, in_prod);
  FIELD(xencons_interface, out_cons);
  FIELD(xencons_interface, out_prod);
#ifdef XENCONSOLE_CONNECTED
  FIELD(xencons_interface, connection);
#endif
  printf("}},\"xenstore_domain_interface\":{\"sizeof\":%zu,\"fields\":{",
         sizeof(struct xenstore_domain_interface));
  sep = "";
  FIELD(xenstore_domain_interface, req);
  FIELD(xenstore_domain_interface, rsp);
  FIELD(xenstore_domain_interface, req_cons);
  FIELD(xenstore_domain_interface, req_prod);
  FIELD(xenstore_domain_interface, rsp_cons);
  FIELD(xenstore_domain_interface, rsp_prod);
  FIELD(xenstore_domain_interface, server_features);
  FIELD(xenstore_domain_interface, connection);
  FIELD(xenstore_domain_interface, error);
  printf("}}},\"constants\":{");
  sep = "";
  CONST(XENSTORE_RING_SIZE);
  CONST(XENSTORE_SERVER_FEATURE_RECONNECTION);
  CONST(XENSTORE_SERVER_FEATURE_ERROR);
#ifdef XENSTORE_SERVER_FEATURE_WATCHDEPTH
  CONST(XENSTORE_SERVER_FEATURE_WATCHDEPTH);
#endif
#ifdef XENSTORE_SERVER_FEATURE_DOMID_ANY
  CONST(XENSTORE_SERVER_FEATURE_DOMID_ANY);
#endif
  CONST(XENSTORE_CONNECTED);
  CONST(XENSTORE_RECONNECT);
  CONST(XENSTORE_ERROR_NONE);
  CONST(XENSTORE_ERROR_COMM);
  CONST(XENSTORE_ERROR_RINGIDX);
  CONST(XENSTORE_ERROR_PROTO);
#ifdef XENCONSOLE_CONNECTED
  CONST(XENCONSOLE_CONNECTED);
  CONST(XENCONSOLE_DISCONNECTED);
#endif
  printf("}}\n");
  return 0;
}
`;

interface CLayouts {
  structs: Record<string, { sizeof: number; fields: Record<string, [number, number]> }>;
  constants: Record<string, number>;
}

function compileAndRun(): Promise<CLayouts> {
  return withTempDir((dir) => {
    const source = join(dir, 'layouts.c');
    const binary = join(dir, 'layouts');
    writeFileSync(source, PROGRAM);
    execFileSync('gcc', ['-std=c11', '-Wall', '-Werror', '-o', binary, source], {
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 30_000,
    });
    return JSON.parse(execFileSync(binary, { encoding: 'utf8', timeout: 10_000 })) as CLayouts;
  });
}

const headers = requirement('gcc and libxen-dev', missingToolchain());

headers.describe('layouts match libxen-dev (gcc offsetof/sizeof)', () => {
  let c: CLayouts;
  const struct = (name: string) => {
    const s = c.structs[name];
    if (s === undefined) throw new Error(`the C program printed no ${name}`);
    return s;
  };

  it('compiles the C program', async () => {
    c = await compileAndRun();
    expect(Object.keys(c.structs)).toEqual(['xencons_interface', 'xenstore_domain_interface']);
  });

  it('struct xencons_interface', () => {
    const s = struct('xencons_interface');
    const L = XENCONS_INTERFACE;
    expect(s.fields.in).toEqual([L.in.dataOffset, L.in.size]);
    expect(s.fields.out).toEqual([L.out.dataOffset, L.out.size]);
    expect(s.fields.in_cons).toEqual([L.in.consOffset, 4]);
    expect(s.fields.in_prod).toEqual([L.in.prodOffset, 4]);
    expect(s.fields.out_cons).toEqual([L.out.consOffset, 4]);
    expect(s.fields.out_prod).toEqual([L.out.prodOffset, 4]);
    if (s.fields.connection !== undefined) {
      expect(s.fields.connection).toEqual([L.connectionOffset, 1]);
    } else {
      // Headers before 4.21: the connection byte is appended right after the 4.17 struct.
      expect(s.sizeof).toBe(L.sizeof);
      expect(L.connectionOffset).toBe(s.sizeof);
    }
    expect(s.sizeof).toBeLessThanOrEqual(L.pageSize);
  });

  it('struct xenstore_domain_interface', () => {
    const s = struct('xenstore_domain_interface');
    const L = xs.XENSTORE_DOMAIN_INTERFACE;
    expect(s.fields.req).toEqual([L.req.dataOffset, L.req.size]);
    expect(s.fields.rsp).toEqual([L.rsp.dataOffset, L.rsp.size]);
    expect(s.fields.req_cons).toEqual([L.req.consOffset, 4]);
    expect(s.fields.req_prod).toEqual([L.req.prodOffset, 4]);
    expect(s.fields.rsp_cons).toEqual([L.rsp.consOffset, 4]);
    expect(s.fields.rsp_prod).toEqual([L.rsp.prodOffset, 4]);
    expect(s.fields.server_features).toEqual([L.serverFeaturesOffset, 4]);
    expect(s.fields.connection).toEqual([L.connectionOffset, 4]);
    expect(s.fields.error).toEqual([L.errorOffset, 4]);
    // evtchn_port (4.21) has no guard macro: it is either the next word or already counted.
    expect([L.sizeof, L.sizeof + 4]).toContain(s.sizeof);
    expect(L.evtchnPortOffset).toBe(L.sizeof);
  });

  it('constants', () => {
    const k = c.constants;
    expect(k.XENSTORE_RING_SIZE).toBe(xs.XENSTORE_RING_SIZE);
    expect(k.XENSTORE_SERVER_FEATURE_RECONNECTION).toBe(xs.XENSTORE_SERVER_FEATURE_RECONNECTION);
    expect(k.XENSTORE_SERVER_FEATURE_ERROR).toBe(xs.XENSTORE_SERVER_FEATURE_ERROR);
    if (k.XENSTORE_SERVER_FEATURE_WATCHDEPTH !== undefined) {
      expect(k.XENSTORE_SERVER_FEATURE_WATCHDEPTH).toBe(xs.XENSTORE_SERVER_FEATURE_WATCHDEPTH);
    }
    if (k.XENSTORE_SERVER_FEATURE_DOMID_ANY !== undefined) {
      expect(k.XENSTORE_SERVER_FEATURE_DOMID_ANY).toBe(xs.XENSTORE_SERVER_FEATURE_DOMID_ANY);
    }
    expect(k.XENSTORE_CONNECTED).toBe(xs.XENSTORE_CONNECTED);
    expect(k.XENSTORE_RECONNECT).toBe(xs.XENSTORE_RECONNECT);
    expect(k.XENSTORE_ERROR_NONE).toBe(xs.XENSTORE_ERROR_NONE);
    expect(k.XENSTORE_ERROR_COMM).toBe(xs.XENSTORE_ERROR_COMM);
    expect(k.XENSTORE_ERROR_RINGIDX).toBe(xs.XENSTORE_ERROR_RINGIDX);
    expect(k.XENSTORE_ERROR_PROTO).toBe(xs.XENSTORE_ERROR_PROTO);
    if (k.XENCONSOLE_CONNECTED !== undefined) {
      expect(k.XENCONSOLE_CONNECTED).toBe(XENCONSOLE_CONNECTED);
      expect(k.XENCONSOLE_DISCONNECTED).toBe(XENCONSOLE_DISCONNECTED);
    }
  });
});

describe('layouts', () => {
  it('every ring is valid inside its page', () => {
    for (const ring of [XENCONS_INTERFACE.in, XENCONS_INTERFACE.out]) {
      expect(() => validateRingLayout(ring, XENCONS_INTERFACE.pageSize)).not.toThrow();
    }
    const X = xs.XENSTORE_DOMAIN_INTERFACE;
    for (const ring of [X.req, X.rsp]) {
      expect(() => validateRingLayout(ring, X.pageSize)).not.toThrow();
    }
  });

  it.each([
    ['size not a power of two', { size: 1000 }],
    ['size 0', { size: 0 }],
    ['data past the page', { dataOffset: 3500 }],
    ['unaligned prod', { prodOffset: 3077 }],
    ['prod outside the page', { prodOffset: 4096 }],
    ['cons inside the data', { consOffset: 1028 }],
    ['prod and cons the same word', { prodOffset: 3080 }],
    ['negative offset', { dataOffset: -4 }],
  ])('rejects %s with ERR_INVALID_ARG', (_, change) => {
    expect(() => validateRingLayout({ ...XENCONS_INTERFACE.out, ...change }, 4096)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG' }),
    );
  });
});
