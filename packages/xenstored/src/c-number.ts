/**
 * The C library's number parsing as cxenstored uses it, so that odd input gives the same answer:
 * `atoi` for domids and ports, `strtol(s, &end, 0)` for permission ids.
 */

const isSpace = (c: number) => c === 32 || (c >= 9 && c <= 13);
const LONG_MAX = (1n << 63n) - 1n;
const LONG_MIN = -(1n << 63n);

interface Parsed {
  /** The value clamped to the range of a C `long`. */
  readonly value: bigint;
  /** Index of the first character not used; equals the start when no digits were found. */
  readonly end: number;
}

function digit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 122) return c - 87;
  if (c >= 65 && c <= 90) return c - 55;
  return 99;
}

/** `strtol(s + start, &end, base)`: base 0 detects `0x` and `0` prefixes. */
export function strtol(s: string, start: number, base: 0 | 10): Parsed {
  let i = start;
  while (i < s.length && isSpace(s.charCodeAt(i))) i++;
  let negative = false;
  const sign = s.charCodeAt(i);
  if (sign === 43 || sign === 45) {
    negative = sign === 45;
    i++;
  }
  let radix: number = base === 0 ? 10 : base;
  if (base === 0 && s.charCodeAt(i) === 48) {
    const x = s.charCodeAt(i + 1);
    if ((x === 120 || x === 88) && digit(s.charCodeAt(i + 2)) < 16) {
      radix = 16;
      i += 2;
    } else {
      radix = 8;
    }
  }
  const first = i;
  let value = 0n;
  const big = BigInt(radix);
  while (i < s.length) {
    const d = digit(s.charCodeAt(i));
    if (d >= radix) break;
    if (value <= LONG_MAX) value = value * big + BigInt(d);
    i++;
  }
  if (i === first) return { value: 0n, end: start };
  if (negative) value = -value;
  if (value > LONG_MAX) value = LONG_MAX;
  if (value < LONG_MIN) value = LONG_MIN;
  return { value, end: i };
}

/** `atoi(s)` as glibc computes it (`(int) strtol(s, NULL, 10)`). */
export function atoi(s: string): number {
  return Number(BigInt.asIntN(32, strtol(s, 0, 10).value));
}

/** `atoi(s)` stored into an `unsigned int`. */
export function atou(s: string): number {
  return atoi(s) >>> 0;
}
