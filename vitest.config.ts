import { defineConfig } from 'vitest/config';

// One config for the whole workspace: every package and app is a project with its own
// `vitest.config.ts` (defineProject), so `pnpm vitest run --project @xencons/ring` runs one.
export default defineConfig({
  test: {
    projects: [
      'packages/*/vitest.config.ts',
      'apps/*/vitest.config.ts',
      'tools/*/vitest.config.ts',
    ],
    reporters: ['default', './tools/vitest/summary-reporter.ts'],
    // Tests spawn processes and map shared pages; two cores are all we have.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
