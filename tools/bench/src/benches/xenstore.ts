import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { openXenstore, type XenstoreClient } from '@xencons/xenstore';
import type { Bench, BenchOptions, BenchResult } from '../result.js';

// The xenstore client against a daemon started in this run, READ and WRITE of a 1-byte value:
//  - `c-libxenstore`: tools/bench/c/xs-client.c linked with Debian's libxenstore (one blocking
//    request at a time, as libxenstore allows), built here with `gcc -lxenstore`;
//  - `ts-sequential`: @xencons/xenstore, awaiting each request before the next;
//  - `ts-pipelined-64`: @xencons/xenstore with 64 requests in flight.
// Targets: sequential ≥ 0.8× the C client; pipelined ≥ 3× the C client.
// Daemons: the reference daemon (`xencons-xenstored`, its own process), and Debian's C xenstored
// 4.17 through the fake-xen LD_PRELOAD shim (packages/xenstore/test/cxenstored/fake-xen.c) when
// it can be built, so the client figures do not depend on one daemon's speed.

const run = promisify(execFile);
const CXENSTORED = '/usr/lib/xen-4.17/bin/xenstored';

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'pnpm-workspace.yaml'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('xenstore bench: cannot find the repository root');
    dir = up;
  }
  return dir;
}

function gcc(out: string, args: string[]): void {
  const r = spawnSync('gcc', ['-O2', '-Wall', '-o', out, ...args], { encoding: 'utf8' });
  if (r.status !== 0)
    throw new Error(`gcc ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
}

export interface Daemon {
  readonly name: string;
  readonly socket: string;
  stop(): Promise<void>;
}

async function waitForSocket(
  child: ChildProcess,
  socket: string,
  stderr: () => string,
): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (existsSync(socket)) return;
    if (child.exitCode !== null) throw new Error(`daemon exited (${child.exitCode}): ${stderr()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`daemon did not create ${socket}: ${stderr()}`);
}

function stopper(child: ChildProcess): () => Promise<void> {
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    await exited;
  };
}

async function startOurs(dir: string): Promise<Daemon> {
  const socket = join(dir, 'ours.sock');
  const cli = fileURLToPath(new URL('./cli.js', import.meta.resolve('@xencons/xenstored')));
  const child = spawn(process.execPath, ['--max-semi-space-size=2', cli, '--socket', socket], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  await waitForSocket(child, socket, () => err);
  return { name: 'xencons-xenstored', socket, stop: stopper(child) };
}

/**
 * tools/bench/c/xs-floor.c on a socket in `dir`: a server that answers every request without a
 * tree, the floor under any xenstore daemon. `sleep` blocks between requests (one wake-up each,
 * as cxenstored); `poll` polls for `spinMicros` after each reply, as xencons-xenstored does.
 */
export async function startFloor(
  dir: string,
  mode: 'sleep' | 'poll',
  spinMicros = 50,
): Promise<Daemon> {
  const bin = join(dir, 'xs-floor');
  if (!existsSync(bin)) gcc(bin, [join(repoRoot(), 'tools/bench/c/xs-floor.c')]);
  const socket = join(dir, `floor-${mode}.sock`);
  const child = spawn(bin, [socket, mode, String(spinMicros)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  await waitForSocket(child, socket, () => err);
  return { name: `floor-${mode}`, socket, stop: stopper(child) };
}

/** Debian's C xenstored 4.17 through the fake-xen shim, on a socket in `dir` (throws if not). */
export async function startCxenstored(dir: string): Promise<Daemon> {
  return startC(dir, repoRoot());
}

async function startC(dir: string, root: string): Promise<Daemon> {
  const source = join(root, 'packages/xenstore/test/cxenstored/fake-xen.c');
  const hash = createHash('sha256').update(readFileSync(source)).digest('hex').slice(0, 12);
  const shim = join(dir, `fake-xen-${hash}.so`);
  gcc(shim, ['-shared', '-fPIC', source, '-ldl']);
  const rundir = join(dir, 'cxenstored');
  spawnSync('mkdir', ['-p', rundir]);
  const child = spawn(CXENSTORED, ['-N'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LD_PRELOAD: shim, XENSTORED_RUNDIR: rundir },
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const socket = join(rundir, 'socket');
  await waitForSocket(child, socket, () => err);
  return { name: 'cxenstored-4.17', socket, stop: stopper(child) };
}

async function cClient(
  bin: string,
  socket: string,
  op: 'read' | 'write',
  count: number,
): Promise<number> {
  const { stdout } = await run(bin, [op, String(count), '/bench/c'], {
    env: { ...process.env, XENSTORED_PATH: socket },
  });
  const [n, ns] = stdout.trim().split(/\s+/).map(Number);
  return (n! / ns!) * 1e9;
}

async function tsClient(
  xs: XenstoreClient,
  op: 'read' | 'write',
  count: number,
  inFlight: number,
): Promise<number> {
  const path = `/bench/ts${inFlight}`;
  await xs.write(path, 'x');
  const one = op === 'read' ? () => xs.read(path) : () => xs.write(path, 'y');
  const per = Math.ceil(count / inFlight);
  const worker = async () => {
    for (let i = 0; i < per; i++) await one();
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: inFlight }, worker));
  return ((per * inFlight) / (performance.now() - start)) * 1000;
}

function median(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  return v[v.length >> 1]!;
}

export const xenstoreBench: Bench = {
  name: 'xenstore',
  description:
    'xenstore client READ/WRITE ops/s: libxenstore (C) vs ours one at a time vs 64 in flight',
  async *run(options: BenchOptions): AsyncIterable<BenchResult> {
    const root = repoRoot();
    const dir = mkdtempSync(join(tmpdir(), 'xencons-bench-xs-'));
    const daemons: Daemon[] = [];
    try {
      const bin = join(dir, 'xs-client');
      gcc(bin, [join(root, 'tools/bench/c/xs-client.c'), '-lxenstore']);
      daemons.push(await startOurs(dir));
      if (existsSync(CXENSTORED)) {
        try {
          daemons.push(await startC(dir, root));
        } catch (err) {
          process.stderr.write(
            `xenstore bench: skipping the C xenstored: ${(err as Error).message}\n`,
          );
        }
      }
      const count = options.quick ? 2000 : 20_000;
      const reps = options.quick ? 1 : 5;
      for (const daemon of daemons) {
        const xs = await openXenstore({ socketPath: daemon.socket, reconnect: false });
        try {
          for (const op of ['read', 'write'] as const) {
            // Warm up both clients (JIT, daemon caches), then alternate the three cases in
            // every repetition so machine noise hits them alike; report medians.
            await cClient(bin, daemon.socket, op, count / 2);
            await tsClient(xs, op, count / 2, 1);
            await tsClient(xs, op, count / 2, 64);
            const cs: number[] = [];
            const seqs: number[] = [];
            const pipes: number[] = [];
            for (let r = 0; r < reps; r++) {
              cs.push(await cClient(bin, daemon.socket, op, count));
              seqs.push(await tsClient(xs, op, count, 1));
              pipes.push(await tsClient(xs, op, count * 4, 64));
            }
            const c = median(cs);
            const seq = median(seqs);
            const pipe = median(pipes);
            const base = {
              bench: 'xenstore',
              metric: `${op} ops/s`,
              unit: 'ops/s',
              daemon: daemon.name,
            };
            yield { ...base, case: 'c-libxenstore', value: c };
            yield {
              ...base,
              case: 'ts-sequential',
              value: seq,
              vsC: seq / c,
              target: 0.8,
              met: seq / c >= 0.8,
            };
            yield {
              ...base,
              case: 'ts-pipelined-64',
              value: pipe,
              vsC: pipe / c,
              target: 3,
              met: pipe / c >= 3,
            };
          }
        } finally {
          xs.destroy();
        }
      }
    } finally {
      for (const d of daemons) await d.stop().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
