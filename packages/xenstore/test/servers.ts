/**
 * Servers the client suite runs against: Debian's C xenstored 4.17 (through the fake-xen shim,
 * see cxenstored/fake-xen.c) and the reference daemon of this repository.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { commandExists, makeTempDir, waitUntil } from '@xencons/test-utils';

export interface TestServer {
  readonly kind: 'cxenstored' | 'xencons';
  readonly socketPath: string;
  /** Stops the daemon and starts it again on the same socket (an empty store). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export const CXENSTORED = '/usr/lib/xen-4.17/bin/xenstored';
const SHIM_SOURCE = fileURLToPath(new URL('./cxenstored/fake-xen.c', import.meta.url));

/** Why Debian's xenstored cannot run here, or null. */
export function cxenstoredMissing(): string | null {
  if (!existsSync(CXENSTORED)) return `${CXENSTORED} not found (apt-get install xen-utils-4.17)`;
  if (!commandExists('gcc')) return 'gcc not found (needed to build the fake-xen LD_PRELOAD shim)';
  if (!existsSync('/usr/include/xenctrl.h'))
    return '/usr/include/xenctrl.h not found (apt-get install libxen-dev)';
  return null;
}

/** Builds the shim once per content hash (atomic rename, so parallel test files agree). */
export function buildFakeXenShim(): string {
  const source = readFileSync(SHIM_SOURCE);
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), 'xencons-fake-xen');
  mkdirSync(dir, { recursive: true });
  const out = join(dir, `fake-xen-${hash}.so`);
  if (existsSync(out)) return out;
  const tmp = `${out}.${process.pid}.tmp`;
  const r = spawnSync('gcc', ['-shared', '-fPIC', '-O2', '-Wall', '-o', tmp, SHIM_SOURCE, '-ldl'], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`building the fake-xen shim failed: ${r.stderr}`);
  renameSync(tmp, out);
  return out;
}

/** True once a connection to the unix socket at `path` is accepted (listen() has happened). */
function accepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Starts Debian's C xenstored on a private socket; `stop()` kills it and removes its directory. */
export async function startCxenstored(extraArgs: string[] = []): Promise<TestServer> {
  const shim = buildFakeXenShim();
  const dir = makeTempDir('xencons-cxenstored-');
  const socketPath = join(dir.path, 'socket');
  let child: ChildProcess | undefined;
  let stderr = '';
  const start = async () => {
    stderr = '';
    const c = spawn(CXENSTORED, ['-N', ...extraArgs], {
      env: { ...process.env, LD_PRELOAD: shim, XENSTORED_RUNDIR: dir.path },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child = c;
    c.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    // The socket file exists from bind(); a connect is refused until listen(): wait for both.
    await waitUntil(
      async () => c.exitCode !== null || (existsSync(socketPath) && (await accepts(socketPath))),
      'the xenstored socket to accept',
      10_000,
    );
    if (c.exitCode !== null) throw new Error(`xenstored exited with ${c.exitCode}: ${stderr}`);
  };
  const kill = async () => {
    const c = child;
    child = undefined;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  };
  try {
    await start();
  } catch (err) {
    await kill();
    dir.remove();
    throw err;
  }
  return {
    kind: 'cxenstored',
    socketPath,
    async restart() {
      await kill();
      // cxenstored unlinks a stale socket itself; remove it so the wait above sees the new one.
      spawnSync('rm', ['-f', socketPath]);
      await start();
    },
    async stop() {
      await kill();
      dir.remove();
    },
  };
}

type StartXenstored = (options: { socketPath?: string }) => Promise<{ close(): Promise<void> }>;

const OURS = fileURLToPath(new URL('../../xenstored/src/index.ts', import.meta.url));

/** Why the reference daemon is not usable from here, or null. */
export function oursMissing(): string | null {
  return existsSync(OURS) ? null : 'packages/xenstored/src/index.ts does not exist yet';
}

/** Starts the reference daemon in this process on a private socket. */
export async function startOurXenstored(): Promise<TestServer> {
  const mod = (await import(/* @vite-ignore */ OURS)) as { startXenstored?: StartXenstored };
  if (mod.startXenstored === undefined)
    throw new Error('@xencons/xenstored does not export startXenstored');
  const startXenstored = mod.startXenstored;
  const dir = makeTempDir('xencons-xenstored-');
  const socketPath = join(dir.path, 'socket');
  let running: { close(): Promise<void> } | undefined = await startXenstored({ socketPath });
  return {
    kind: 'xencons',
    socketPath,
    async restart() {
      await running?.close();
      running = await startXenstored({ socketPath });
    },
    async stop() {
      await running?.close();
      running = undefined;
      dir.remove();
    },
  };
}
