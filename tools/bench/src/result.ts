/** One measured figure; `--json` prints exactly this object per line. */
export interface BenchResult {
  bench: string;
  case: string;
  metric: string;
  value: number;
  unit: string;
  [extra: string]: string | number | boolean;
}

export interface Bench {
  readonly name: string;
  readonly description: string;
  /** Yields results as they are measured, so a long run shows progress. */
  run(options: BenchOptions): AsyncIterable<BenchResult>;
}

export interface BenchOptions {
  /** Shorter runs for smoke tests (`--quick`): same cases, fewer iterations. */
  readonly quick: boolean;
}
