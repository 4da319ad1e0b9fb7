/**
 * Test bytes that depend on their absolute position in the stream (and a seed), so a lost,
 * repeated or reordered chunk shows up as a mismatch, not just a wrong length.
 */
export function patternBytes(seed: number, offset: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    let x = (offset + i + Math.imul(seed, 0x9e3779b1)) >>> 0;
    x ^= x >>> 15;
    x = Math.imul(x, 0x85ebca6b);
    x ^= x >>> 13;
    out[i] = x & 0xff;
  }
  return out;
}
