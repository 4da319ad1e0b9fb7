// Shared by the test files (not exported by the package): the backends every ring suite runs
// against, and small page helpers.
import { nativeUnavailableReason } from '@xencons/native';
import { type Requirement, requirement } from '@xencons/test-utils';
import type { RingOptions } from './ring-endpoint.js';

export interface BackendCase {
  readonly name: string;
  readonly options: RingOptions;
  /** What the machine must provide for this backend. */
  readonly needs: Requirement;
}

const always = requirement('nothing', null);
const nativeAddon = requirement('the native addon', nativeUnavailableReason());

/** pure TS, native, and `auto` with a low threshold so one run mixes both copies. */
export const BACKENDS: readonly BackendCase[] = [
  { name: 'ts', options: { backend: 'ts' }, needs: always },
  { name: 'native', options: { backend: 'native' }, needs: nativeAddon },
  { name: 'auto/48', options: { backend: 'auto', nativeThreshold: 48 }, needs: nativeAddon },
];

/** Deterministic pseudo-random bytes (xorshift32), so failures reproduce from the seed. */
export function pseudoRandomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 0x9e3779b9;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}
