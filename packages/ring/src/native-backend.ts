import { XenconsError } from '@xencons/errors';
import { loadNative, type NativeBinding, nativeUnavailableReason } from '@xencons/native';

/**
 * Which copy a producer or consumer uses. `auto`: pure TS below `nativeThreshold` bytes, the
 * native addon at or above it when the addon is loaded (pure TS otherwise). `ts` or `native`
 * force one; `native` throws `ERR_NATIVE_UNAVAILABLE` when the addon is missing.
 */
export type RingBackend = 'auto' | 'ts' | 'native';

/**
 * The smallest operation length (bytes requested) for which `auto` calls the native addon.
 *
 * Measured with `pnpm bench ring` (tools/bench/src/benches/ring.ts: a console `out` ring in one
 * process, write then read, ts and native interleaved round by round) on 2026-11-26, on the
 * project's 2-vCPU Zen 5 VM with Node 20.20 and the addon built `--release`, while other jobs
 * shared the machine: the native copy was slower than the TS copy at every scanned size from 1
 * to 2048 bytes. Median native/ts throughput ratio over two full runs: 0.18-0.19 at 1 byte,
 * 0.25 at 8, 0.32-0.33 at 16, 0.47-0.64 from 24 to 1024, 0.59-0.68 at 2048; in MiB/s, ts 1835-2086
 * vs native 1209-1308 at 1 KiB and ts 2895-2897 vs native 2047-2137 at 2 KiB. One native call
 * costs ≈300 ns here (≈150 ns even for the 4-argument `ringQueued`): N-API entry and argument
 * unpacking, against ≈30 ns plus the copy for the TS path. A ring operation never moves more than
 * the ring (2048 bytes), so there is no crossover and `auto` uses the TS copy at every size.
 * When the addon changes, re-run the bench: its `crossover` result is the new value (-1: none).
 */
export const NATIVE_THRESHOLD: number = Number.POSITIVE_INFINITY;

/** The native binding, or null when the addon is not available. */
export function nativeBinding(): NativeBinding | null {
  return loadNative();
}

/** Why the native binding is unavailable, or null when it is loaded. */
export function nativeRingUnavailableReason(): string | null {
  return nativeUnavailableReason();
}

export function requireNativeBinding(): NativeBinding {
  const binding = loadNative();
  if (binding === null) {
    throw new XenconsError(
      'ERR_NATIVE_UNAVAILABLE',
      `the native ring backend was requested but @xencons/native is unavailable: ${nativeUnavailableReason() ?? 'unknown reason'}`,
    );
  }
  return binding;
}
