import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { loadNative, nativeUnavailableReason } from '@xencons/native';
import { makeTempDir, requirement } from '@xencons/test-utils';
import { describe, expect, it } from 'vitest';
import { XENCONS_INTERFACE } from './console-layout.js';
import { consoleBackendRings } from './console-rings.js';
import { resetRing } from './reset-ring.js';
import { BACKENDS, pseudoRandomBytes } from './test-support.js';

// Two processes, one page: this process is the console backend (dom0: consumes `out`, produces
// `in`) through our TypeScript rings; a child `node` process is the guest, using the native ring
// functions directly. The page is a file in a temp dir that both map MAP_SHARED. Each side
// checks the bytes it received against the sender's pseudo-random stream and both compare
// FNV-1a checksums.

const PEER = fileURLToPath(new URL('./cross-process-peer.mjs', import.meta.url));
const NATIVE_INDEX = fileURLToPath(
  new URL('../node_modules/@xencons/native/index.js', import.meta.url),
);
const OUT_BYTES = 4 * 1024 * 1024;
const IN_BYTES = 1024 * 1024;
const DEADLINE_MS = 30_000;

function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193) >>> 0;
  return h;
}

interface PeerReport {
  sent: number;
  sentChecksum: number;
  received: number;
  receivedChecksum: number;
  firstMismatch: number;
}

function collect(
  child: ChildProcess,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => {
    stdout += s;
  });
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const nativeAddon = requirement('the native addon', nativeUnavailableReason());

describe.each(BACKENDS)('two processes through a shared file mapping, backend $name', (b) => {
  nativeAddon.describe(`backend ${b.options.backend}`, () => {
    it(`streams ${OUT_BYTES >> 20} MiB out and ${IN_BYTES >> 20} MiB in with matching checksums`, async () => {
      const native = loadNative()!;
      const dir = makeTempDir('xencons-ring-');
      const pagePath = join(dir.path, 'console-page');
      writeFileSync(pagePath, new Uint8Array(4096));
      const mapping = native.mapFile(pagePath, 0, 4096, true);
      let child: ChildProcess | undefined;
      try {
        // Indices start just below 2^32 so both streams cross the u32 wrap.
        resetRing(mapping, XENCONS_INTERFACE.out, 0xffff_f000);
        resetRing(mapping, XENCONS_INTERFACE.in, 0xffff_fc00);
        const rings = consoleBackendRings(mapping, b.options);
        const config = { outBytes: OUT_BYTES, outSeed: 0x1234, inBytes: IN_BYTES, inSeed: 0x4321 };
        child = spawn(
          process.execPath,
          [PEER, NATIVE_INDEX, pagePath, JSON.stringify({ ...config, deadlineMs: DEADLINE_MS })],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        const exited = collect(child);
        let childDone = false;
        void exited.then(() => {
          childDone = true;
        });

        const inData = pseudoRandomBytes(IN_BYTES, config.inSeed);
        const outData = new Uint8Array(OUT_BYTES);
        const deadline = Date.now() + DEADLINE_MS;
        let sent = 0;
        let received = 0;
        let idle = 0;
        let chunk = 1;
        while (received < OUT_BYTES || sent < IN_BYTES) {
          chunk = (chunk * 1103515245 + 12345) >>> 0;
          const size = 1 + ((chunk >>> 8) % 2048);
          let moved = 0;
          if (received < OUT_BYTES) {
            const n = rings.out.read(outData, received, Math.min(size, OUT_BYTES - received));
            received += n;
            moved += n;
          }
          if (sent < IN_BYTES) {
            const n = rings.in.write(inData, sent, Math.min(size, IN_BYTES - sent));
            sent += n;
            moved += n;
          }
          if (moved === 0 && ++idle > 256) {
            idle = 0;
            if (Date.now() > deadline)
              throw new Error(`deadline: received ${received}, sent ${sent}`);
            if (childDone && received < OUT_BYTES) {
              const { code, stderr } = await exited;
              throw new Error(`the peer exited (${code}) early: ${stderr}`);
            }
            await yieldToLoop();
          }
        }

        const { code, stdout, stderr } = await Promise.race([
          exited,
          new Promise<never>((_, reject) =>
            setTimeout(() => reject(new Error('the peer did not exit')), 10_000).unref(),
          ),
        ]);
        expect(stderr).toBe('');
        expect(code).toBe(0);
        const report = JSON.parse(stdout) as PeerReport;
        expect(report).toMatchObject({ sent: OUT_BYTES, received: IN_BYTES, firstMismatch: -1 });
        expect(report.receivedChecksum).toBe(fnv1a(inData));
        expect(fnv1a(outData)).toBe(report.sentChecksum);
        expect(Buffer.compare(outData, pseudoRandomBytes(OUT_BYTES, config.outSeed))).toBe(0);
        expect(rings.out.available()).toBe(0);
        expect(rings.in.available()).toBe(0);
      } finally {
        if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
          process.kill(child.pid, 'SIGKILL');
        }
        native.unmap(mapping);
        dir.remove();
      }
    }, 60_000);
  });
});
