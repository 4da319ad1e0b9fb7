// Shared by the native test files: the binding (or a requirement that explains its absence),
// child node processes, temp dirs and FIFOs.
import { spawnSync } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir, requirement } from '@xencons/test-utils';
import { loadNative, type NativeBinding, nativeUnavailableReason } from '../index.js';

export const packageDir = fileURLToPath(new URL('..', import.meta.url));
export const indexUrl = new URL('../index.js', import.meta.url).href;

const loaded = loadNative();
/** The addon: suites that need it are skipped locally (failing in CI) when it is not built. */
export const native = requirement(
  'the native addon (pnpm --filter @xencons/native build; needs Rust)',
  loaded ? null : nativeUnavailableReason(),
);

/** The binding; only call inside a `native.describe` suite. */
export function binding(): NativeBinding {
  if (!loaded) throw new Error(`native addon missing: ${nativeUnavailableReason()}`);
  return loaded;
}

export interface ChildResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs an ES module snippet in a fresh node (so env changes and crashes stay there). */
export function runNode(
  code: string,
  options: { env?: Record<string, string | undefined>; args?: string[]; timeout?: number } = {},
): ChildResult {
  const env: Record<string, string | undefined> = { ...process.env, ...options.env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  const r = spawnSync(
    process.execPath,
    [...(options.args ?? []), '--input-type=module', '-e', code],
    {
      cwd: packageDir,
      env: env as NodeJS.ProcessEnv,
      encoding: 'utf8',
      timeout: options.timeout ?? 20_000,
    },
  );
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** A fresh temp dir for the test; call `remove()` in `finally`/`afterEach`. */
export const tempDir = makeTempDir;

export interface Fifo {
  readFd: number;
  writeFd: number;
  close(): void;
}

/**
 * Creates `count` FIFOs in `dir`: each with a non-blocking read end and a write end (Node has
 * no pipe(2); a FIFO is the same kernel object).
 */
export function makeFifos(dir: string, count: number): Fifo[] {
  const paths = Array.from({ length: count }, (_, i) => join(dir, `fifo-${i}`));
  const r = spawnSync('mkfifo', paths, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mkfifo failed: ${r.stderr}`);
  return paths.map((p) => {
    const readFd = openSync(p, constants.O_RDONLY | constants.O_NONBLOCK);
    const writeFd = openSync(p, constants.O_WRONLY);
    return {
      readFd,
      writeFd,
      close() {
        closeSync(readFd);
        closeSync(writeFd);
      },
    };
  });
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Waits until `check()` is true, polling; rejects after `timeoutMs`. */
export async function waitFor(check: () => boolean, timeoutMs = 5000, what = 'condition') {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
