import { defineProject, type UserWorkspaceConfig } from 'vitest/config';

/**
 * The shared per-package vitest project: tests import workspace packages from their TypeScript
 * sources (the `@xencons/source` export condition), so a test run never needs a stale `dist`.
 */
export function xenconsProject(name: string, extra: UserWorkspaceConfig['test'] = {}) {
  return defineProject({
    resolve: { conditions: ['@xencons/source', 'import', 'node', 'default'] },
    ssr: { resolve: { conditions: ['@xencons/source', 'import', 'node', 'default'] } },
    test: {
      name,
      include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
      testTimeout: 30_000,
      hookTimeout: 30_000,
      ...extra,
    },
  });
}
