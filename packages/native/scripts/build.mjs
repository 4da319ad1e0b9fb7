// Builds the addon with @napi-rs/cli: `napi build --platform --release` in this package, which
// writes xencons-native.<platform>-<arch>-<abi>.node next to index.js (cargo's own output stays
// in ./target).
//
// Without cargo this is not an error locally (the loader then returns null with a reason and
// the pure-TS paths are used), but with CI=true it is: CI must build the native core.
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
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
// The CLI writes into target/napi-out; we then install the binary next to index.js by rename,
// and only when it changed. Copying over the old file in place would change the code under every
// running process that has it loaded (a simulated host, a daemon): they would crash.
const staging = join(packageDir, 'target', 'napi-out');
mkdirSync(staging, { recursive: true });
const result = spawnSync(
  'npx',
  ['napi', 'build', '--platform', ...profile, '--no-js', '--output-dir', staging],
  { cwd: packageDir, stdio: 'inherit' },
);
if (result.error) {
  console.error(`@xencons/native: could not run napi build: ${result.error.message}`);
  process.exit(1);
}
if (result.status !== 0) process.exit(result.status ?? 1);
for (const name of readdirSync(staging).filter((n) => n.endsWith('.node'))) {
  const built = readFileSync(join(staging, name));
  const target = join(packageDir, name);
  if (existsSync(target) && readFileSync(target).equals(built)) continue;
  const temporary = `${target}.${process.pid}.tmp`;
  writeFileSync(temporary, built, { mode: 0o755 });
  renameSync(temporary, target);
}
process.exit(0);
