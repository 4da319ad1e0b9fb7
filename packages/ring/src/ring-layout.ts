import { XenconsError } from '@xencons/errors';

/**
 * Where one Xen byte ring lives inside its page: a power-of-two data area and two free-running
 * u32 indices. Offsets are bytes from the start of the page.
 */
export interface RingLayout {
  /** Used in errors, e.g. `xencons_interface.out`. */
  readonly name: string;
  readonly dataOffset: number;
  /** Bytes in the data area; a power of two. */
  readonly size: number;
  readonly prodOffset: number;
  readonly consOffset: number;
}

const isIndex = (n: number) => Number.isSafeInteger(n) && n >= 0;

/**
 * Checks that `layout` is a usable ring inside a page of `pageBytes` bytes: a power-of-two size,
 * the data area and both 4-byte-aligned index words inside the page and not overlapping each other.
 * Throws `ERR_INVALID_ARG` otherwise.
 */
export function validateRingLayout(layout: RingLayout, pageBytes: number): void {
  const { name, dataOffset, size, prodOffset, consOffset } = layout;
  const fail = (why: string): never => {
    throw new XenconsError('ERR_INVALID_ARG', `ring layout ${name}: ${why}`, {
      details: { ring: name, dataOffset, size, prodOffset, consOffset, pageBytes },
    });
  };
  if (!isIndex(dataOffset) || !isIndex(prodOffset) || !isIndex(consOffset)) {
    fail('offsets must be non-negative integers');
  }
  if (!Number.isSafeInteger(size) || size < 1 || size > 2 ** 31 || (size & (size - 1)) !== 0) {
    fail(`size ${size} is not a power of two between 1 and 2^31`);
  }
  if (dataOffset + size > pageBytes) fail(`data area ends past the page (${pageBytes} bytes)`);
  for (const [field, at] of [
    ['prodOffset', prodOffset],
    ['consOffset', consOffset],
  ] as const) {
    if (at % 4 !== 0) fail(`${field} ${at} is not 4-byte aligned`);
    if (at + 4 > pageBytes) fail(`${field} ${at} is outside the page (${pageBytes} bytes)`);
    if (at < dataOffset + size && at + 4 > dataOffset) fail(`${field} overlaps the data area`);
  }
  if (prodOffset === consOffset) fail('prodOffset and consOffset are the same word');
}
