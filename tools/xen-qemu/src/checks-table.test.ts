import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// The README's table of checks names every check vm/checks/dom0-run.sh can report: the ones it
// reports itself and the ones its check scripts report (listed there for `--only`).
const runScript = readFileSync(new URL('../vm/checks/dom0-run.sh', import.meta.url), 'utf8');
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

/** Check names in dom0-run.sh: its `*_CHECKS='...'` lists and its own pass/fail/selected calls. */
function checkNames(script: string): string[] {
  const names = new Set<string>();
  for (const m of script.matchAll(/^[A-Z_]+_CHECKS='([^']*)'/gm))
    for (const name of m[1]!.split(/\s+/).filter(Boolean)) names.add(name);
  for (const m of script.matchAll(/\b(?:pass|fail|selected) ([a-z0-9-]+)/g)) names.add(m[1]!);
  // A script's own name (`native`, `xs`, ...) is only used for a FAIL when the script itself
  // failed; the README describes that next to its checks.
  return [...names].filter(
    (n) => n.includes('-') || ![...names].some((other) => other.startsWith(`${n}-`)),
  );
}

/** The backquoted names in the first column of the README's table rows. */
function tableNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^\| ([^|]*) \|/gm))
    for (const n of m[1]!.matchAll(/`([a-z0-9-]+)`/g)) names.add(n[1]!);
  return names;
}

describe('the checks table of the README', () => {
  it('finds the check lists in dom0-run.sh', () => {
    const names = checkNames(runScript);
    expect(names).toContain('xl-list');
    expect(names).toContain('agent-login');
    expect(names).toContain('xs-cmp-misc');
    expect(names).toContain('agent-console'); // although agent-console-removed exists
    expect(names).toContain('xenstored');
    expect(names).not.toContain('agent');
  });

  it('has a row for every check dom0-run.sh can report', () => {
    const rows = tableNames(readme);
    const missing = checkNames(runScript).filter((n) => !rows.has(n));
    expect(missing).toEqual([]);
  });
});
