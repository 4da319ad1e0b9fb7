import { ringBench } from './benches/ring.js';
import type { Bench } from './result.js';

/** Every benchmark, by name; `pnpm bench` with no name runs them all. */
export const benches: readonly Bench[] = [ringBench];
(benches as Bench[]).push((await import('./benches/xenstored.js')).xenstoredBench);
(benches as Bench[]).push((await import('./benches/xenstore.js')).xenstoreBench);
(benches as Bench[]).push((await import('./benches/evtchn.js')).evtchnBench);
(benches as Bench[]).push((await import('./benches/console.js')).consoleBench);
