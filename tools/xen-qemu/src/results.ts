/** The check-line protocol between the in-VM scripts and the host, and the final summary (pure). */

export interface CheckResult {
  readonly status: 'PASS' | 'FAIL';
  readonly name: string;
  /** Why it failed (empty for a pass, and for a FAIL line without a reason). */
  readonly reason: string;
}

const LINE = /^(PASS|FAIL) ([^\s:]+)(?::\s?(.*))?$/;

/**
 * Parses one `PASS name` / `FAIL name: reason` line. Tolerates what a serial console adds
 * (carriage returns, a leading `XQ-RESULT ` tag, stray bytes before the tag); returns null for
 * anything else.
 */
export function parseCheckLine(raw: string): CheckResult | null {
  let line = raw.replace(/\r/g, '').trim();
  const tag = line.lastIndexOf('XQ-RESULT ');
  if (tag >= 0) line = line.slice(tag + 'XQ-RESULT '.length);
  const m = LINE.exec(line);
  if (!m) return null;
  return { status: m[1] as 'PASS' | 'FAIL', name: m[2]!, reason: (m[3] ?? '').trim() };
}

/** Every check line in `text`, in order. */
export function parseCheckLines(text: string): CheckResult[] {
  const out: CheckResult[] = [];
  for (const l of text.split('\n')) {
    const r = parseCheckLine(l);
    if (r) out.push(r);
  }
  return out;
}

export function formatCheck(r: CheckResult): string {
  return r.status === 'PASS' ? `PASS ${r.name}` : `FAIL ${r.name}: ${r.reason || 'failed'}`;
}

/** Prefixes every name with `prefix/` (the xenstored implementation of that boot). */
export function prefixed(prefix: string, results: readonly CheckResult[]): CheckResult[] {
  return results.map((r) => ({ ...r, name: `${prefix}/${r.name}` }));
}

export interface Summary {
  readonly passed: number;
  readonly failed: number;
}

export function summarize(results: readonly CheckResult[]): Summary {
  let passed = 0;
  let failed = 0;
  for (const r of results) {
    if (r.status === 'PASS') passed++;
    else failed++;
  }
  return { passed, failed };
}

/** The final line of a run. A run without any result is a failure, never a silent pass. */
export function formatSummary(s: Summary): string {
  return `${s.passed} passed, ${s.failed} failed`;
}

/** Exit code of `test`: 0 only when something ran and nothing failed. */
export function exitCodeFor(s: Summary): number {
  return s.failed === 0 && s.passed > 0 ? 0 : 1;
}

/** A `XQ-MARK name [args]` progress marker found anywhere in a console line, or null. */
export function parseMark(raw: string): { name: string; detail: string } | null {
  const m = /XQ-MARK ([A-Za-z0-9_.-]+)(?: (.*))?$/.exec(raw.replace(/\r/g, '').trimEnd());
  return m ? { name: m[1]!, detail: (m[2] ?? '').trim() } : null;
}
