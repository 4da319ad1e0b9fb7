// Shared by the ring test files: the console page layout, index access and test bytes.
import { isXenconsError } from '@xencons/errors';
import { expect } from 'vitest';

// struct xencons_interface: in[1024] @0, out[2048] @1024, in_cons 3072, in_prod 3076,
// out_cons 3080, out_prod 3084.
export const OUT = { data: 1024, size: 2048, cons: 3080, prod: 3084 } as const;
export const IN = { data: 0, size: 1024, cons: 3072, prod: 3076 } as const;
export type Layout = typeof OUT | typeof IN;

export function setIndices(page: Uint8Array, l: Layout, prod: number, cons: number) {
  const dv = new DataView(page.buffer, page.byteOffset, page.byteLength);
  dv.setUint32(l.prod, prod >>> 0, true);
  dv.setUint32(l.cons, cons >>> 0, true);
}

export function indices(page: Uint8Array, l: Layout) {
  const dv = new DataView(page.buffer, page.byteOffset, page.byteLength);
  return { prod: dv.getUint32(l.prod, true), cons: dv.getUint32(l.cons, true) };
}

/** Deterministic bytes (xorshift) so failures reproduce. */
export function bytes(n: number, seed: number) {
  const out = new Uint8Array(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export function expectInvalid(fn: () => unknown, message?: RegExp) {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(isXenconsError(caught, 'ERR_INVALID_ARG'), String(caught)).toBe(true);
  if (message) expect((caught as Error).message).toMatch(message);
}
