#!/usr/bin/env node
// Entry point of every root script (`npm test`, `npm run demo`, `pnpm xencons ...`): makes a fresh
// clone usable (pnpm, dependencies, system packages for tests, the build) and then runs the command.
// Plain Node, no dependencies: it must run before anything is installed.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { homedir, constants as osConstants } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PNPM_VERSION = JSON.parse(
  readFileSync(join(root, 'package.json'), 'utf8'),
).packageManager.split('@')[1];
const [command, ...args] = process.argv.slice(2);
const env = {
  ...process.env,
  TURBO_TELEMETRY_DISABLED: '1',
  DO_NOT_TRACK: '1',
  COREPACK_INTEGRITY_KEYS: '0',
};
const quiet = ['bench', 'xencons', 'xencons-agent', 'xen-qemu', 'xencons-xenstored'].includes(
  command,
);

/** Progress and tool output go to stderr so program data on stdout stays clean. */
function note(msg) {
  process.stderr.write(`[xencons] ${msg}\n`);
}

function run(cmd, argv, opts = {}) {
  const res = spawnSync(cmd, argv, {
    cwd: root,
    env,
    // `quietUnlessFailed`: the output is kept and shown (on stderr) only if the command fails.
    stdio: opts.quietUnlessFailed
      ? ['inherit', 'pipe', 'pipe']
      : opts.toStderr
        ? ['inherit', process.stderr, 'inherit']
        : 'inherit',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (res.error) return { status: 127, error: res.error };
  const status = res.status ?? (res.signal === 'SIGINT' ? 130 : 143);
  if (opts.quietUnlessFailed && status !== 0) {
    process.stderr.write(res.stdout ?? '');
    process.stderr.write(res.stderr ?? '');
  }
  return { status };
}

function works(cmd, argv) {
  const res = spawnSync(cmd, argv, {
    cwd: root,
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return res.status === 0 ? res.stdout.trim() : null;
}

/**
 * pnpm 10 from wherever it can be had: the pnpm running us, PATH, a copy cached by an earlier run,
 * corepack, or a fresh `npm install` into the cache. turbo looks pnpm up on PATH, so a shim named
 * `pnpm` is put first on PATH for every child.
 */
function findPnpm() {
  const cache = join(
    process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'),
    'xencons',
    `pnpm-${PNPM_VERSION}`,
  );
  const cached = join(cache, 'bin', 'pnpm');
  const execPath = process.env.npm_execpath ?? '';
  let pnpm;
  if (/pnpm/.test(execPath) && existsSync(execPath)) pnpm = [process.execPath, [execPath]];
  else if (works('pnpm', ['--version'])?.startsWith('10.')) pnpm = ['pnpm', []];
  else if (existsSync(cached) && works(cached, ['--version'])) pnpm = [cached, []];
  else if (works('corepack', [`pnpm@${PNPM_VERSION}`, '--version']))
    pnpm = ['corepack', [`pnpm@${PNPM_VERSION}`]];
  else {
    note(`pnpm ${PNPM_VERSION} not found; installing it into ${cache}`);
    const r = spawnSync('npm', ['install', '-g', '--prefix', cache, `pnpm@${PNPM_VERSION}`], {
      stdio: ['ignore', process.stderr, 'inherit'],
      env,
    });
    if (r.status !== 0 || !existsSync(cached)) fail('could not install pnpm with npm', 1);
    pnpm = [cached, []];
  }
  const shimDir = join(root, 'node_modules', '.xencons-bin');
  mkdirSync(shimDir, { recursive: true });
  const quote = (a) => `'${a.replaceAll("'", "'\\''")}'`;
  writeFileSync(
    join(shimDir, 'pnpm'),
    `#!/bin/sh\nexec ${[pnpm[0], ...pnpm[1]].map(quote).join(' ')} "$@"\n`,
    {
      mode: 0o755,
    },
  );
  env.PATH = `${shimDir}${delimiter}${env.PATH ?? ''}`;
  return pnpm;
}

function mtime(p) {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return 0;
  }
}

function ensureInstalled(pnpm) {
  const marker = join(root, 'node_modules', '.pnpm', 'lock.yaml');
  if (mtime(marker) >= mtime(join(root, 'pnpm-lock.yaml')) && mtime(marker) > 0) return;
  note('installing dependencies (pnpm install)');
  const r = run(pnpm[0], [...pnpm[1], 'install', '--frozen-lockfile'], { toStderr: quiet });
  if (r.status !== 0) fail('pnpm install failed', r.status);
}

function systemPackages() {
  return readFileSync(join(__dirnameOf('system-packages.txt')), 'utf8')
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean);
}

function __dirnameOf(f) {
  return join(root, 'tools', 'bootstrap', f);
}

function ensureSystemPackages() {
  if (!existsSync('/usr/bin/dpkg-query')) {
    note(
      'not a Debian/Ubuntu system: install the packages in tools/bootstrap/system-packages.txt yourself',
    );
    return;
  }
  const wanted = systemPackages();
  // dpkg-query's own format syntax, not a template literal.
  const statusFormat = '-f=$' + '{Status}';
  const missing = wanted.filter(
    (p) => works('dpkg-query', ['-W', statusFormat, p]) !== 'install ok installed',
  );
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    note(`missing Debian packages: ${missing.join(' ')}; tests that need them will skip.`);
    note(`install them with: sudo apt-get install -y ${missing.join(' ')}`);
    return;
  }
  note(`installing Debian packages: ${missing.join(' ')}`);
  const aptEnv = { ...env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env: aptEnv });
  const r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
    stdio: 'inherit',
    env: aptEnv,
  });
  if (r.status !== 0) fail('apt-get install failed', 1);
}

/** Builds the workspace, or with `only` (a package or a list) just those and what they depend on. */
function build(pnpm, only) {
  if (!works('cargo', ['--version'])) {
    note(
      'cargo not found: @xencons/native will not be built and the pure-TS paths are used (install Rust to build it)',
    );
  }
  const filter = (only === undefined ? [] : [only].flat()).map((name) => `--filter=${name}...`);
  const logs = quiet ? '--output-logs=errors-only' : '--output-logs=new-only';
  // A program run from the checkout prints only its own output: the build says nothing unless
  // it fails.
  // spawnSync blocks this process, so a separate timer says so when a build takes a while.
  const slow = quiet
    ? spawn(
        'sh',
        [
          '-c',
          'sleep 8 && echo "[xencons] building what changed first (a fresh checkout takes minutes)" >&2',
        ],
        { stdio: ['ignore', 'ignore', 'inherit'] },
      )
    : null;
  const r = run(pnpm[0], [...pnpm[1], 'exec', 'turbo', 'run', 'build', ...filter, logs], {
    quietUnlessFailed: quiet,
  });
  slow?.kill();
  if (r.status !== 0) fail('build failed', r.status);
}

function fail(msg, code) {
  note(msg);
  process.exit(code || 1);
}

/** Each program's package, so only what it needs is built before it runs. */
const packageOf = {
  xencons: 'xencons',
  'xencons-agent': 'xencons-agent',
  bench: '@xencons/bench',
  'xen-qemu': '@xencons/xen-qemu',
  'xencons-xenstored': '@xencons/xenstored',
};

/** Node flags a program's shebang sets, repeated here because we start it with `node`. */
const nodeFlags = {
  // A small young generation keeps the daemon's RSS near its live data (see its README).
  'xencons-xenstored': ['--max-semi-space-size=2'],
};

const programs = {
  xencons: join(root, 'apps', 'dom0', 'dist', 'cli.js'),
  'xencons-agent': join(root, 'apps', 'guest', 'dist', 'cli.js'),
  bench: join(root, 'tools', 'bench', 'dist', 'cli.js'),
  'xen-qemu': join(root, 'tools', 'xen-qemu', 'dist', 'cli.js'),
  'xencons-xenstored': join(root, 'packages', 'xenstored', 'dist', 'cli.js'),
};

function main() {
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major < 20 || (major === 20 && minor < 19))
    fail(`Node ${process.versions.node} is too old: xencons needs Node 20.19 or newer`, 1);
  if (!command)
    fail(
      'usage: bootstrap.mjs test|demo|bench|xencons|xencons-agent|test-xen|xen-qemu [args...]',
      2,
    );
  const pnpm = findPnpm();
  ensureInstalled(pnpm);
  if (command === 'test') {
    ensureSystemPackages();
    build(pnpm);
    for (const step of [
      ['typecheck', [...pnpm[1], 'exec', 'turbo', 'run', 'typecheck', '--output-logs=errors-only']],
      ['lint', [...pnpm[1], 'exec', 'biome', 'check', '.']],
      ['vitest', [...pnpm[1], 'exec', 'vitest', 'run', ...args]],
    ]) {
      note(`${step[0]}`);
      const r = run(pnpm[0], step[1]);
      if (r.status !== 0) fail(`${step[0]} failed`, r.status);
    }
    return;
  }
  if (command === 'demo') {
    // The demo's guest runs this checkout's agent (a login on its console).
    build(pnpm, [packageOf.xencons, packageOf['xencons-agent']]);
    env.XENCONS_AGENT ??= programs['xencons-agent'];
    exec([programs.xencons, 'demo', ...args]);
    return;
  }
  if (command === 'test-xen') {
    // The harness shares every built package with dom0, so everything is built.
    build(pnpm);
    exec([programs['xen-qemu'], 'test', ...args]);
    return;
  }
  const program = programs[command];
  if (!program) fail(`unknown command: ${command}`, 2);
  if (command === 'xencons') {
    // `xencons sim create NAME --agent` (and the demo) run the guest agent of this checkout.
    build(pnpm, [packageOf.xencons, packageOf['xencons-agent']]);
    env.XENCONS_AGENT ??= programs['xencons-agent'];
  } else build(pnpm, packageOf[command]);
  exec([...(nodeFlags[command] ?? []), program, ...args]);
}

/**
 * Runs a program under this node as the last thing we do: signals sent to us (SIGTERM to a daemon
 * started through `pnpm xencons daemon`, say) are passed on, and we exit with its status, or
 * 128 + the signal number when a signal ended it.
 */
function exec(argv) {
  const child = spawn(process.execPath, argv, { cwd: process.cwd(), env, stdio: 'inherit' });
  const forward = (signal) => child.kill(signal);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(signal, forward);
  child.on('error', (err) => fail(`cannot start ${argv.at(-1)}: ${err.message}`, 1));
  child.on('exit', (code, signal) => {
    process.exitCode = code ?? 128 + (signal ? osConstants.signals[signal] : 0);
    for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.off(s, forward);
  });
}

main();
