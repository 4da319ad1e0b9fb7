import { XenconsError } from '@xencons/errors';
import type { RingLayout } from './ring-layout.js';

const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

/** `prod - cons` (mod 2^32) is larger than the ring: the other side wrote a bad index. */
export function ringCorrupt(layout: RingLayout, prod: number, cons: number): XenconsError {
  const queued = (prod - cons) >>> 0;
  return new XenconsError(
    'ERR_RING_CORRUPT',
    `ring ${layout.name} is corrupt: prod ${hex(prod)} - cons ${hex(cons)} = ${queued} exceeds its size ${layout.size}`,
    { details: { ring: layout.name, prod, cons, size: layout.size } },
  );
}

/** The page's buffer was detached, e.g. a native mapping used after `unmap()`. */
export function ringDetached(layout: RingLayout): XenconsError {
  return new XenconsError(
    'ERR_RING_DETACHED',
    `ring ${layout.name}: its page was unmapped or its buffer detached`,
    { details: { ring: layout.name } },
  );
}

/** `offset`/`length` do not describe a span of `buffer`. */
export function badSpan(
  what: string,
  buffer: { readonly length: number },
  offset: number,
  length: number,
): XenconsError {
  return new XenconsError(
    'ERR_INVALID_ARG',
    `${what}: offset ${offset} and length ${length} are not a span of a ${buffer.length}-byte buffer`,
    { details: { offset, length, bufferLength: buffer.length } },
  );
}
