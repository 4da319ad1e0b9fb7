import { existsSync, realpathSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

/** Leaves `@xencons/native` out of the bundle, imported by absolute path: its loader finds the binary next to itself. */
function externalNative(resolveFrom: string): Plugin {
  return {
    name: 'xencons-external-native',
    setup(pluginBuild) {
      pluginBuild.onResolve({ filter: /^@xencons\/native$/ }, () => ({
        path: findNative(resolveFrom),
        external: true,
      }));
    },
  };
}

/** The loader of the `@xencons/native` that `from` would import (node_modules lookup, then the workspace). */
function findNative(from: string): string {
  for (let dir = path.dirname(from); ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', '@xencons', 'native', 'index.js');
    if (existsSync(candidate)) return realpathSync(candidate);
    const workspace = path.join(dir, 'packages', 'native', 'index.js');
    if (existsSync(workspace)) return workspace;
    if (path.dirname(dir) === dir) throw new Error(`@xencons/native is not reachable from ${from}`);
  }
}

/**
 * Bundles a TypeScript entry (and the workspace sources it imports, through the
 * `@xencons/source` condition) into one ESM file in `outDir`, so a test can run it as a separate
 * plain `node` process against the code under test rather than a stale `dist`.
 * `resolveFrom` is a file of a package that depends on `@xencons/native` (default: the entry).
 */
export async function bundleChildScript(
  entry: string | URL,
  outDir: string,
  resolveFrom?: string,
): Promise<string> {
  const entryPath = typeof entry === 'string' ? entry : fileURLToPath(entry);
  const outfile = path.join(outDir, `${path.basename(entryPath).replace(/\.[cm]?ts$/, '')}.mjs`);
  await build({
    entryPoints: [entryPath],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    conditions: ['@xencons/source'],
    logLevel: 'silent',
    plugins: [externalNative(resolveFrom ?? entryPath)],
  });
  return outfile;
}
