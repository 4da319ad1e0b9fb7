import { defineConfig, type Options } from 'tsup';

/**
 * The tsup setup of every workspace package: ESM for Node 20, declarations for `src/index.ts`
 * only (programs' other entries are executables), source maps, a clean `dist`.
 */
export function xenconsTsup(entry: string[], extra: Options = {}) {
  return defineConfig({
    entry,
    format: ['esm'],
    dts: entry.includes('src/index.ts') ? { entry: 'src/index.ts' } : false,
    sourcemap: true,
    clean: true,
    target: 'node20',
    ...extra,
  });
}
