import { type CaseContext, type ConformanceCase, conformanceCases } from './cases.js';
import type { ConformanceTarget } from './target.js';

/** Runs one case on `target`, then its cleanups (last first), whatever happened. */
export async function runCase(target: ConformanceTarget, c: ConformanceCase): Promise<void> {
  const cleanups: (() => unknown)[] = [];
  const ctx: CaseContext = {
    target,
    open: async () => {
      const ch = await target.open();
      cleanups.push(() => ch.close());
      return ch;
    },
    openForeign: async () => {
      const f = await target.openForeign();
      cleanups.push(() => f.release());
      return f;
    },
    spawnPeer: async () => {
      const p = await target.spawnPeer();
      cleanups.push(() => p.close());
      return p;
    },
    sharePage: async (peer) => {
      const page = await target.sharePage(peer);
      cleanups.push(() => page.release());
      return page;
    },
    defer: (fn) => {
      cleanups.push(fn);
    },
  };
  try {
    await c.run(ctx);
  } finally {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch {
        // a cleanup failing must not hide the case's own result
      }
    }
  }
}

export interface CaseResult {
  readonly name: string;
  readonly ok: boolean;
  readonly error?: Error;
  readonly ms: number;
}

export interface RunOptions {
  /** Only cases whose name matches. */
  readonly only?: RegExp;
  /** Skip the cases that need peer processes. */
  readonly inProcessOnly?: boolean;
  /** Called after each case. */
  readonly onResult?: (r: CaseResult) => void;
}

/**
 * Runs the conformance suite on `target` without a test framework (the real-Xen check runs it
 * this way in dom0). Resolves with one result per case run.
 */
export async function runConformance(
  target: ConformanceTarget,
  options: RunOptions = {},
): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const c of conformanceCases) {
    if (options.only && !options.only.test(c.name)) continue;
    if (options.inProcessOnly && c.crossProcess) continue;
    const start = performance.now();
    let result: CaseResult;
    try {
      await runCase(target, c);
      result = { name: c.name, ok: true, ms: performance.now() - start };
    } catch (err) {
      result = { name: c.name, ok: false, error: err as Error, ms: performance.now() - start };
    }
    results.push(result);
    options.onResult?.(result);
  }
  return results;
}
