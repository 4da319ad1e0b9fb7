import { XenconsError } from '@xencons/errors';
import {
  loadNative,
  type NativeBinding,
  nativeUnavailableReason,
  type RingHandle,
} from '@xencons/native';
import type { RingLayout } from './ring-layout.js';

/**
 * Which copy a producer or consumer uses. `auto`: pure TS below `nativeThreshold` bytes, the
 * native addon at or above it when the addon is loaded (pure TS otherwise). `ts` or `native`
 * force one; `native` throws `ERR_NATIVE_UNAVAILABLE` when the addon is missing.
 */
export type RingBackend = 'auto' | 'ts' | 'native';

/**
 * The smallest operation length (bytes requested) for which `auto` calls the native addon.
 *
 * Re-measured 2026-11-26 after the addon gained bound rings (`ringBind` + `ringWrite`/`ringRead`:
 * layout checked once, 4 arguments per call, ≈100 ns and ≈1100 instructions per call, against
 * ≈170 ns and ≈1860 for the 8-argument `ringProduce` before). Setup: `pnpm bench ring` (a console
 * `out` ring in one process, write then read, backends interleaved), five runs on the project's
 * 2-vCPU VM with Node 20.20 and the addon built `--release`, while QEMU shared the machine (load
 * average 2.6-3.1). Medians in MiB/s, ts vs native: 13.6 vs 3.7 at 1 byte, 155 vs 156 at 64, 1962
 * vs 2054 at 1 KiB, 3090 vs 3320 at 2 KiB.
 *
 * The crossover scan (native/ts ratio per size, median of interleaved rounds) put native at
 * 0.29-0.44 up to 8 bytes and 0.57-0.60 at 16. From 24 to 2048 bytes it moved between 0.77 and
 * 1.12 from run to run, with no size where native stayed ahead, and found a crossover in 1 run of
 * 5. Other interleaved runs at loads 1 to 5 agree: native is within about ±10 % of TS from 24
 * bytes up, and TS wins clearly below that.
 *
 * Instruction counts (callgrind, independent of load) per write+read pair, ts vs native: 923 vs
 * 2411 at 1 byte, 2587 vs 2632 at 1 KiB, 2880 vs 2823 at 2 KiB. The fixed cost of a Node-API call
 * (entry, resolving the Uint8Array, the handle, the page re-check, two numbers, the result) is
 * about what V8's JIT-compiled TS path spends on a `subarray` and a `set`, so the time is a tie. A
 * tie is not worth a native call and a bound handle per ring, so `auto` keeps the TS copy at every
 * size. A ring operation never moves more than the ring (2048 bytes here), so larger chunks cannot
 * tip the balance. When the addon changes, re-run the bench: its `crossover` result is the new
 * value (-1: none).
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

/** The largest ring the addon binds (`MAX_RING_SIZE` in packages/native/src/ring.rs). */
export const NATIVE_MAX_RING_SIZE = 2 ** 30;

/**
 * A ring bound in the native addon (`ringBind`): its layout validated once, its page re-checked
 * by every call. The binding's functions are kept next to the handle, so a call costs two
 * monomorphic field loads and always targets the same function (which lets V8 call it directly).
 */
export interface NativeRing {
  readonly handle: RingHandle;
  readonly write: NativeBinding['ringWrite'];
  readonly read: NativeBinding['ringRead'];
}

/** Binds `layout` inside `bytes` in the addon (ERR_INVALID_ARG when the addon refuses it). */
export function bindNativeRing(
  binding: NativeBinding,
  bytes: Uint8Array,
  layout: RingLayout,
): NativeRing {
  const { dataOffset, size, prodOffset, consOffset } = layout;
  const handle = binding.ringBind(bytes, dataOffset, size, prodOffset, consOffset);
  return { handle, write: binding.ringWrite, read: binding.ringRead };
}
