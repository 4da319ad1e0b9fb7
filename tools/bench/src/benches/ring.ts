import { loadavg } from 'node:os';
import { nativeUnavailableReason } from '@xencons/native';
import {
  NATIVE_THRESHOLD,
  type RingBackend,
  RingConsumer,
  RingProducer,
  XENCONS_INTERFACE,
} from '@xencons/ring';
import type { Bench, BenchOptions, BenchResult } from '../result.js';

// Bytes through a console `out` ring (struct xencons_interface, 2048 bytes) in one process: the
// producer writes a chunk, the consumer reads it back, alternating, so the figure is the cost of
// the ring code itself (index loads and stores, validation, copies, the native call), not of
// cache-line transfers between cores (machine-limits.md measures those separately).
//
// Integrity: the stream is a 64 KiB pseudo-random pattern; the consumer reads into a mirror at
// the same offsets, and after every lap the mirror is compared with the pattern (one memcmp)
// and cleared, so a ring that drops, repeats or misplaces bytes fails instead of looking fast.

const OUT = XENCONS_INTERFACE.out;
const PATTERN_BYTES = 65_536;
const CHUNKS = [1, 64, 1024, 2048] as const;
const BACKENDS: readonly RingBackend[] = ['ts', 'native', 'auto'];
/** Sizes scanned for the crossover, ts against native. */
const SCAN = [1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 1024, 2048] as const;
const MiB = 1024 * 1024;

interface Timing {
  /** Median of the repetitions, MiB/s. */
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

function timing(samples: number[]): Timing {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    median: sorted[sorted.length >> 1]!,
    min: sorted[0]!,
    max: sorted[sorted.length - 1]!,
  };
}

function pattern(length: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = 0x2545f491;
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

const SOURCE = pattern(PATTERN_BYTES);

/** Runs the produce/consume loop for about `seconds`; returns MiB/s. Throws on corrupt data. */
function run(producer: RingProducer, consumer: RingConsumer, chunk: number, seconds: number) {
  const lap = chunk * Math.floor(PATTERN_BYTES / chunk);
  const mirror = new Uint8Array(PATTERN_BYTES);
  const src = SOURCE;
  const start = performance.now();
  const end = start + seconds * 1000;
  let bytes = 0;
  let now = start;
  do {
    for (let at = 0; at < lap; ) {
      const written = producer.write(src, at, chunk);
      const read = consumer.read(mirror, at, chunk);
      if (written !== chunk || read !== chunk) {
        throw new Error(`ring bench: wrote ${written} and read ${read} of a ${chunk}-byte chunk`);
      }
      at += chunk;
    }
    if (Buffer.compare(mirror.subarray(0, lap), src.subarray(0, lap)) !== 0) {
      throw new Error(`ring bench: data corrupted (${producer.backend}, chunk ${chunk})`);
    }
    mirror.fill(0, 0, lap);
    bytes += lap;
    now = performance.now();
  } while (now < end);
  return bytes / MiB / ((now - start) / 1000);
}

interface Pair {
  readonly producer: RingProducer;
  readonly consumer: RingConsumer;
}

function ringPair(backend: RingBackend): Pair {
  const page = new ArrayBuffer(XENCONS_INTERFACE.pageSize);
  return {
    producer: new RingProducer(page, OUT, { backend }),
    consumer: new RingConsumer(page, OUT, { backend }),
  };
}

/**
 * Measures the backends at one chunk size, interleaved: `rounds` rounds, each running every
 * backend for `seconds / rounds`, so a load change on this shared 2-core machine hits all of them
 * alike. Returns the samples per backend (MiB/s), in `backends` order.
 */
function measure(
  backends: readonly RingBackend[],
  chunk: number,
  seconds: number,
  rounds: number,
  warmup: number,
): number[][] {
  const pairs = backends.map(ringPair);
  for (const p of pairs) run(p.producer, p.consumer, chunk, warmup);
  const samples = backends.map((): number[] => []);
  for (let r = 0; r < rounds; r++) {
    pairs.forEach((p, i) => {
      samples[i]!.push(run(p.producer, p.consumer, chunk, seconds / rounds));
    });
  }
  return samples;
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

function result(
  backend: string,
  chunk: number,
  t: Timing,
  extra: Record<string, string | number> = {},
): BenchResult {
  return {
    bench: 'ring',
    case: `${backend}/${chunk}`,
    metric: 'throughput',
    value: t.median,
    unit: 'MiB/s',
    backend,
    chunk,
    min: t.min,
    max: t.max,
    ...extra,
  };
}

async function* runRing(options: BenchOptions): AsyncIterable<BenchResult> {
  const seconds = options.quick ? 0.06 : 1;
  const rounds = options.quick ? 3 : 5;
  const warmup = options.quick ? 0.02 : 0.2;
  const scanSeconds = options.quick ? 0.02 : 0.25;
  const scanRounds = options.quick ? 3 : 7;
  const nativeMissing = nativeUnavailableReason();
  if (nativeMissing !== null) {
    process.stderr.write(`ring: native addon unavailable (${nativeMissing}); ts only\n`);
  }
  const backends = nativeMissing === null ? BACKENDS : (['ts'] as const);
  // The 1-minute load average when the run started and ended: on a shared machine the figures
  // only mean something next to it.
  const loadStart = loadavg()[0] ?? 0;
  const autoPath = ringPair('auto').producer;

  for (const chunk of CHUNKS) {
    const samples = measure(backends, chunk, seconds, rounds, warmup);
    for (const [i, backend] of backends.entries()) {
      const extra: Record<string, string | number> = {};
      if (backend === 'auto') extra.path = autoPath.usesNative(chunk) ? 'native' : 'ts';
      yield result(backend, chunk, timing(samples[i]!), extra);
    }
  }

  if (nativeMissing !== null) return;
  // The crossover: the smallest scanned size from which native stays faster than ts, judged by
  // the median over interleaved rounds of the native/ts throughput ratio.
  const scan: { chunk: number; ratio: number; ts: number; native: number }[] = [];
  for (const chunk of SCAN) {
    const [ts = [], native = []] = measure(
      ['ts', 'native'],
      chunk,
      scanSeconds,
      scanRounds,
      warmup / 2,
    );
    const ratios = ts.map((t, i) => (native[i] ?? 0) / t);
    scan.push({ chunk, ratio: median(ratios), ts: median(ts), native: median(native) });
  }
  let from = scan.length;
  while (from > 0 && scan[from - 1]!.ratio > 1) from--;
  const at = scan[from];
  yield {
    bench: 'ring',
    case: 'crossover',
    metric: 'crossover',
    // -1: native is not faster at any scanned size (up to the 2048-byte ring).
    value: at === undefined ? -1 : at.chunk,
    unit: 'bytes',
    ...(at === undefined ? {} : { nativeOverTs: at.ratio }),
    libraryThreshold: Number.isFinite(NATIVE_THRESHOLD) ? NATIVE_THRESHOLD : 'none',
    loadStart,
    loadEnd: loadavg()[0] ?? 0,
    scan: scan.map((s) => `${s.chunk}:${s.ratio.toFixed(2)}`).join(' '),
  };
}

export const ringBench: Bench = {
  name: 'ring',
  description: 'console out ring in one process, produce then consume: ts vs native vs auto',
  run: runRing,
};
