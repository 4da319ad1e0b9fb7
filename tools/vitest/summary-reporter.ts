import type { Reporter, TestModule } from 'vitest/node';

/**
 * Prints one plain closing line, `vitest: N passed, M failed, K skipped`, and lists every skipped
 * test. With `CI=true` a skipped test fails the run: in CI every system package is installed and
 * nothing may skip.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    const skipped: string[] = [];
    for (const mod of testModules) {
      if (mod.state() === 'failed' && [...mod.children.allTests()].length === 0) failed++;
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped.push(`${mod.project.name} > ${test.fullName}`);
      }
    }
    const out = process.stdout;
    if (skipped.length > 0) {
      out.write(
        `\nskipped tests (${skipped.length}); the reason is printed where each suite is collected:\n`,
      );
      for (const name of skipped) out.write(`  - ${name}\n`);
    }
    const ci = process.env.CI === 'true' || process.env.CI === '1';
    if (ci && skipped.length > 0) {
      out.write(`CI=true: ${skipped.length} skipped test(s) count as failures\n`);
      failed += skipped.length;
      process.exitCode = 1;
    }
    out.write(`\nvitest: ${passed} passed, ${failed} failed, ${skipped.length} skipped\n`);
  }
}
