import type { BenchResult } from './result.js';

function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** Renders results as an aligned text table (bench, case, metric, value, unit, extras). */
export function formatTable(results: readonly BenchResult[]): string {
  const rows = results.map((r) => {
    const { bench, case: c, metric, value, unit, ...extra } = r;
    const extras = Object.entries(extra)
      .map(([k, v]) => `${k}=${typeof v === 'number' ? formatValue(v) : String(v)}`)
      .join(' ');
    return [bench, c, metric, formatValue(value), unit, extras];
  });
  const header = ['bench', 'case', 'metric', 'value', 'unit', ''];
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((row) => row[i]?.length ?? 0)));
  return all
    .map((row) =>
      row
        .map((cell, i) => (i === 3 ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
