// @xencons/native loader (hand-written; see index.d.ts for the API).
//
// Order: XENCONS_NATIVE=0 disables the addon; XENCONS_NATIVE_PATH points at a binary; otherwise
// xencons-native.<platform>-<arch>[-gnu|-musl].node next to this file, else the per-platform
// package @xencons/native-<platform>-<arch>[-<abi>] if installed. Loading never throws: it
// returns null and remembers why.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));
const BINARY_NAME = 'xencons-native';
const SUPPORTED = new Set(['linux-x64', 'linux-arm64']);

/** Result codes returned (never thrown) by the hot ring functions. */
export const RING_CORRUPT = -1;
/** Returned by the bound ring functions when the page was unmapped (detached) or shrunk. */
export const RING_DETACHED = -2;

/** Ring pump callback bits (see pumpStart in index.d.ts). */
export const PUMP_READABLE = 1;
export const PUMP_WRITABLE = 2;
export const PUMP_BROKEN_RX = 4;
export const PUMP_BROKEN_TX = 8;

/** @type {{ binding: import('./index.js').NativeBinding | null, reason: string | null, path: string | null } | undefined} */
let state;

function isMusl() {
  try {
    return readFileSync('/usr/bin/ldd', 'utf8').includes('musl');
  } catch {
    // No ldd: ask node itself (only glibc builds report a glibc version).
    /** @type {{ glibcVersionRuntime?: string } | undefined} */
    const header = /** @type {any} */ (process.report?.getReport())?.header;
    return header?.glibcVersionRuntime === undefined;
  }
}

/** `linux-x64-gnu`, `linux-arm64-musl`… (the napi-rs platform-arch-abi naming). */
function platformTriple() {
  const base = `${process.platform}-${process.arch}`;
  if (process.platform !== 'linux') return base;
  return `${base}-${isMusl() ? 'musl' : 'gnu'}`;
}

/** Loads one candidate; returns the binding or a reason string. */
function tryLoad(path) {
  try {
    const binding = require(path);
    if (typeof binding?.ringProduce !== 'function' || typeof binding?.version !== 'string') {
      return { reason: `${path} is not a xencons-native binary` };
    }
    // A copy with fast properties: the addon's exports object is in dictionary mode (N-API adds
    // its ~40 properties one by one), so every `binding.ringWrite` load would be a hash lookup.
    return { binding: Object.freeze({ ...binding }) };
  } catch (err) {
    return {
      reason: `failed to load ${path}: ${err instanceof Error ? err.message : String(err)}`,
    };
  }
}

function load() {
  const env = process.env;
  if (env.XENCONS_NATIVE === '0') {
    return { binding: null, reason: 'disabled by XENCONS_NATIVE=0', path: null };
  }
  if (env.XENCONS_NATIVE_PATH) {
    const path = resolve(env.XENCONS_NATIVE_PATH);
    if (!existsSync(path)) {
      return {
        binding: null,
        reason: `XENCONS_NATIVE_PATH points at ${path}, which does not exist`,
        path: null,
      };
    }
    const r = tryLoad(path);
    return r.binding
      ? { binding: r.binding, reason: null, path }
      : { binding: null, reason: r.reason, path: null };
  }
  const base = `${process.platform}-${process.arch}`;
  if (!SUPPORTED.has(base)) {
    return {
      binding: null,
      reason: `unsupported platform ${base}: the native core is built for Linux x64 and arm64 only`,
      path: null,
    };
  }
  const triple = platformTriple();
  const local = join(here, `${BINARY_NAME}.${triple}.node`);
  if (existsSync(local)) {
    const r = tryLoad(local);
    return r.binding
      ? { binding: r.binding, reason: null, path: local }
      : { binding: null, reason: r.reason, path: null };
  }
  const pkg = `@xencons/native-${triple}`;
  let pkgPath;
  try {
    pkgPath = require.resolve(pkg);
  } catch {
    return {
      binding: null,
      reason:
        `no native binary: ${local} does not exist and ${pkg} is not installed ` +
        '(build it with `pnpm --filter @xencons/native build`, which needs Rust)',
      path: null,
    };
  }
  const r = tryLoad(pkgPath);
  return r.binding
    ? { binding: r.binding, reason: null, path: pkgPath }
    : { binding: null, reason: r.reason, path: null };
}

function current() {
  state ??= load();
  return state;
}

/** The binding, or null when no binary fits this platform (see `nativeUnavailableReason`). */
export function loadNative() {
  return current().binding;
}

/** Why `loadNative()` returned null, or null when it loaded. */
export function nativeUnavailableReason() {
  return current().reason;
}

/** Path of the `.node` file that was loaded, or null. */
export function nativeBinaryPath() {
  return current().path;
}

/** The binding, or throws an Error with code ERR_NATIVE_UNAVAILABLE and the reason. */
export function requireNative() {
  const { binding, reason } = current();
  if (binding) return binding;
  const err = new Error(`@xencons/native is unavailable: ${reason}`);
  err.name = 'XenconsError';
  Object.defineProperty(err, 'code', { value: 'ERR_NATIVE_UNAVAILABLE', enumerable: true });
  // The same brand XenconsError carries, so isXenconsError() accepts it without a runtime
  // dependency on @xencons/errors.
  Object.defineProperty(err, Symbol.for('xencons.error'), { value: true });
  throw err;
}
