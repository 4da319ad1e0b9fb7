// Builds the addon with @napi-rs/cli: `napi build --platform --release` in this package, which
// writes xencons-native.<platform>-<arch>-<abi>.node next to index.js (cargo's own output stays
// in ./target).
//
// Without cargo this is not an error locally (the loader then returns null with a reason and
// the pure-TS paths are used), but with CI=true it is: CI must build the native core.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const ci = process.env.CI === 'true' || process.env.CI === '1';

const cargo = spawnSync(process.env.CARGO ?? 'cargo', ['--version'], { encoding: 'utf8' });
if (cargo.error || cargo.status !== 0) {
  const why = cargo.error ? cargo.error.message : (cargo.stderr ?? '').trim();
  const message =
    `@xencons/native: cargo is not available (${why}), so the native addon was not built.\n` +
    '  Install Rust (https://rustup.rs) and rerun `pnpm --filter @xencons/native build`.\n' +
    '  Until then loadNative() returns null and xencons uses its pure-TypeScript paths.';
  if (ci) {
    console.error(`error: ${message}\n  CI=true: a missing native build is a failure.`);
    process.exit(1);
  }
  console.warn(`warning: ${message}`);
  process.exit(0);
}

// --no-js: index.js and index.d.ts are hand-written; never let the CLI generate bindings.
// XENCONS_NATIVE_PROFILE=debug builds without --release (faster to compile, with debug asserts).
const profile = process.env.XENCONS_NATIVE_PROFILE === 'debug' ? [] : ['--release'];
const result = spawnSync('npx', ['napi', 'build', '--platform', ...profile, '--no-js'], {
  cwd: packageDir,
  stdio: 'inherit',
});
if (result.error) {
  console.error(`@xencons/native: could not run napi build: ${result.error.message}`);
  process.exit(1);
}
process.exit(result.status ?? 1);
