/**
 * The bytes `pnpm bench console` streams: a pseudo-random pattern of a prime length (65537), so
 * data from a wrong offset or a previous lap never matches. `BENCH_PATTERN` holds the pattern
 * followed by its first 1 MiB again, so any run of up to 1 MiB from any offset below
 * `PATTERN_LENGTH` is one `subarray` (one memcmp to check, one view to write).
 */
export const PATTERN_LENGTH = 65537;

function makePattern(): Buffer {
  const tail = 1 << 20;
  const out = Buffer.alloc(PATTERN_LENGTH + tail);
  let x = 0x2545f491;
  for (let i = 0; i < PATTERN_LENGTH; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  for (let i = PATTERN_LENGTH; i < out.length; i++) out[i] = out[i % PATTERN_LENGTH]!;
  return out;
}

export const BENCH_PATTERN: Buffer = makePattern();

/**
 * Checks a stream of pattern bytes as it arrives, from offset `start` of the pattern. `check`
 * returns false at the first wrong byte (and stays false).
 */
export class PatternChecker {
  at: number;
  bytes = 0;
  ok = true;

  constructor(start = 0) {
    this.at = start % PATTERN_LENGTH;
  }

  check(chunk: Uint8Array): boolean {
    if (!this.ok) return false;
    let from = 0;
    while (from < chunk.length) {
      const n = Math.min(chunk.length - from, PATTERN_LENGTH - this.at);
      if (
        Buffer.compare(
          chunk.subarray(from, from + n),
          BENCH_PATTERN.subarray(this.at, this.at + n),
        ) !== 0
      ) {
        this.ok = false;
        return false;
      }
      this.at = (this.at + n) % PATTERN_LENGTH;
      from += n;
    }
    this.bytes += chunk.length;
    return true;
  }
}

/**
 * Where in the pattern `head` (at least 64 bytes, a viewer that joined mid-stream) starts, or -1.
 * 64 pseudo-random bytes occur once in the pattern.
 */
export function findInPattern(head: Uint8Array): number {
  const probe = head.subarray(0, 64);
  const at = BENCH_PATTERN.subarray(0, PATTERN_LENGTH + 63).indexOf(probe);
  return at < 0 ? -1 : at % PATTERN_LENGTH;
}
