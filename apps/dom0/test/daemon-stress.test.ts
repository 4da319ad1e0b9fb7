import { type ChildProcess, spawn } from 'node:child_process';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { nativeUnavailableReason } from '@xencons/native';
import { type SimHost, startSimHost } from '@xencons/sim';
import { bundleChildScript, makeTempDir, requirement, waitUntil } from '@xencons/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { attachConsole, listConsoles } from '../src/daemon/client.js';
import type { ConsoleSummary } from '../src/daemon/protocol.js';

// The issue asks for 30 s of flooding; a local run may shorten it (XENCONS_FLOOD_SECONDS).
const FLOOD_SECONDS = Number(process.env.XENCONS_FLOOD_SECONDS ?? '30');
/** What the daemon process may grow to while a guest floods it (its bound: `limit` per console + code). */
const RSS_BOUND_MIB = 256;

const here = path.dirname(fileURLToPath(import.meta.url));
const cli = path.join(here, '..', 'dist', 'cli.js');
const scratch = makeTempDir('xencons-stress-');
let guestMain = '';
let flood = '';
let hostile = '';
const children = new Set<ChildProcess>();

afterAll(() => scratch.remove());
afterEach(() => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
});

const until = (check: () => boolean | Promise<boolean>, what: string, ms = 20_000) =>
  waitUntil(check, what, ms, 20);

function rssMiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : 0;
}

/** The daemon as its own process, so its memory can be watched. */
async function startDaemon(
  dir: string,
  args: string[],
): Promise<{ child: ChildProcess; socket: string; logs: string }> {
  const socket = path.join(dir, 'xencons', 'daemon.sock');
  const logs = path.join(dir, 'logs');
  const child = spawn(process.execPath, [cli, 'daemon', ...args], {
    env: { ...process.env, XENCONS_SIM: dir },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.add(child);
  let err = '';
  child.stderr?.on('data', (chunk) => {
    err += chunk;
  });
  await until(() => err.includes('ready'), `the daemon (${err})`);
  return { child, socket, logs };
}

/** Keystroke round trips through the daemon to a `cat` guest while something else runs. */
async function echoLatencies(
  socket: string,
  domain: string,
  durationMs: number,
): Promise<number[]> {
  const viewer = await attachConsole(socket, {
    domain,
    num: 0,
    mode: 'rw',
    replay: 0,
    takeOver: false,
    label: 'echo',
  });
  const samples: number[] = [];
  let waiting: ((ok: boolean) => void) | null = null;
  viewer.socket.on('data', () => waiting?.(true));
  viewer.socket.resume();
  const end = Date.now() + durationMs;
  while (Date.now() < end) {
    const t0 = performance.now();
    const got = new Promise<boolean>((resolve) => {
      waiting = resolve;
      setTimeout(() => resolve(false), 2000);
    });
    viewer.socket.write('k');
    if (!(await got)) throw new Error('a keystroke got no echo within 2 s');
    samples.push(performance.now() - t0);
    waiting = null;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  viewer.socket.destroy();
  return samples.sort((a, b) => a - b);
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? Number.NaN;

const needs = requirement(
  'the native addon and a built xencons (dist/cli.js)',
  nativeUnavailableReason() ?? (existsSync(cli) ? null : `${cli} is missing: run pnpm build`),
);

needs.describe('console daemon under a flooding guest', () => {
  let host: SimHost;

  beforeAll(async () => {
    guestMain = await bundleChildScript(
      new URL('../../../packages/sim/src/guest-main.ts', import.meta.url),
      scratch.path,
    );
    flood = await bundleChildScript(new URL('./guests/flood.ts', import.meta.url), scratch.path);
    hostile = await bundleChildScript(
      new URL('./guests/hostile.ts', import.meta.url),
      scratch.path,
    );
  });

  afterEach(async () => {
    await host?.close();
  });

  for (const policy of ['keep', 'discard'] as const) {
    it(
      `${policy}: ${policy === 'keep' ? 'the log holds every line in order' : 'the counters say exactly what was dropped'}; memory bounded; another console stays responsive`,
      async () => {
        const dir = path.join(scratch.path, `flood-${policy}`);
        host = await startSimHost({ dir, guestMain });
        // discard with a rate limit, so dropping really happens; keep without one (every byte logged).
        const daemon = await startDaemon(dir, [
          '--overflow',
          policy,
          ...(policy === 'discard' ? ['--rate', '4M'] : []),
        ]);
        await host.createDomain({ name: 'echo', cmd: 'cat' });
        const flooder = await host.createDomain({
          name: 'flood',
          program: [process.execPath, flood],
          env: { FLOOD_SECONDS: String(FLOOD_SECONDS) },
        });
        await until(
          async () =>
            (await listConsoles(daemon.socket)).filter((c) => c.state === 'connected').length === 2,
          'both consoles',
        );
        let maxRss = 0;
        const sampler = setInterval(() => {
          maxRss = Math.max(maxRss, rssMiB(daemon.child.pid ?? 0));
        }, 250);
        const latencies = await echoLatencies(daemon.socket, 'echo', FLOOD_SECONDS * 1000);
        await until(
          async () =>
            (await host.xs.readStringOptional(
              `/local/domain/${flooder.domid}/data/flood-total`,
            )) !== undefined,
          'the flood to finish',
          60_000,
        );
        const [totalBytes, totalLines] = (
          (await host.xs.readString(`/local/domain/${flooder.domid}/data/flood-total`)) ?? ''
        )
          .split(' ')
          .map(Number) as [number, number];
        const log = path.join(daemon.logs, 'guest-flood.log');
        let summary: ConsoleSummary | undefined;
        await until(
          async () => {
            summary = (await listConsoles(daemon.socket)).find((c) => c.name === 'flood');
            const c = summary?.counters;
            return (
              c !== null &&
              c !== undefined &&
              c.fromGuest === totalBytes &&
              existsSync(log) &&
              statSync(log).size === c.fromGuest - c.dropped
            );
          },
          `the daemon to read and log all ${totalBytes} bytes (${JSON.stringify(summary)})`,
          60_000,
        );
        clearInterval(sampler);

        const counters = summary?.counters;
        expect(totalLines).toBeGreaterThan(1000);
        expect(counters?.fromGuest).toBe(totalBytes);
        if (policy === 'keep') {
          expect(counters?.dropped).toBe(0);
          // Streamed: a 30 s flood logs hundreds of MiB.
          let expected = 1;
          let last = '';
          const reader = createInterface({
            input: createReadStream(log),
            crlfDelay: Number.POSITIVE_INFINITY,
          });
          for await (const line of reader) {
            if (expected <= totalLines) {
              if (!line.startsWith(`${expected} `)) {
                throw new Error(`log line ${expected} is ${JSON.stringify(line.slice(0, 80))}`);
              }
              expected++;
            } else last = line;
          }
          expect(expected - 1).toBe(totalLines);
          expect(last).toBe(`END ${totalLines}`);
        } else {
          expect(counters?.dropped).toBeGreaterThan(0);
          expect(statSync(log).size).toBe(totalBytes - (counters?.dropped ?? 0));
        }
        expect(maxRss).toBeGreaterThan(0);
        expect(maxRss).toBeLessThan(RSS_BOUND_MIB);
        expect(latencies.length).toBeGreaterThan(10);
        // Every keystroke came back (none waited 2 s). The latency itself is a speed target,
        // measured by `pnpm bench console` (daemon/echo-under-flood/POLICY), not asserted here; this
        // prints it.
        const p50 = percentile(latencies, 50);
        const p99 = percentile(latencies, 99);
        process.stdout.write(
          `[${policy}] ${FLOOD_SECONDS} s flood: ${totalLines} lines, ${(totalBytes / 2 ** 20).toFixed(1)} MiB, dropped ${counters?.dropped}; daemon max RSS ${maxRss.toFixed(1)} MiB; echo meanwhile p50 ${p50.toFixed(2)} ms p99 ${p99.toFixed(2)} ms (${latencies.length} samples)\n`,
        );
        daemon.child.kill('SIGTERM');
      },
      (FLOOD_SECONDS + 120) * 1000,
    );
  }

  describe('hostile guests', () => {
    for (const mode of ['indices', 'garbage'] as const) {
      it(`survives ${mode === 'indices' ? 'random ring indices' : 'garbage and a flood'} and a guest vanishing mid-write; others are unaffected`, async () => {
        const dir = path.join(scratch.path, `hostile-${mode}`);
        host = await startSimHost({ dir, guestMain });
        const daemon = await startDaemon(dir, []);
        await host.createDomain({ name: 'good', cmd: 'cat' });
        await until(
          async () =>
            (await listConsoles(daemon.socket)).some(
              (c) => c.name === 'good' && c.state === 'connected',
            ),
          'the good console',
        );
        const bad = await host.createDomain({
          name: 'bad',
          program: [process.execPath, hostile],
          env: { HOSTILE: mode },
        });
        await until(
          () => !host.list().some((d) => d.domid === bad.domid),
          'the hostile guest to vanish',
          30_000,
        );
        expect(daemon.child.exitCode).toBe(null);
        const latencies = await echoLatencies(daemon.socket, 'good', 1000);
        expect(latencies.length).toBeGreaterThan(10);
        const consoles = await listConsoles(daemon.socket);
        expect(consoles.map((c) => c.name)).toEqual(['good']);
        daemon.child.kill('SIGTERM');
      }, 60_000);
    }
  });
});
