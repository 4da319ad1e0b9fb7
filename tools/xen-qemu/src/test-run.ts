/** `xen-qemu test`: image set, share, one boot per xenstored, check lines, timings, summary. */
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestOptions, Xenstored } from './args.js';
import { ensureHostTools } from './host-tools.js';
import { ensureImages, type ImageSet, lockCache } from './image.js';
import { progress, seconds } from './log.js';
import { type BootResult, bootForTest, type MachineConfig } from './qemu.js';
import {
  type CheckResult,
  exitCodeFor,
  formatCheck,
  formatSummary,
  parseCheckLines,
  prefixed,
  summarize,
} from './results.js';
import { buildShare, configEnv } from './share.js';

export interface Context {
  readonly repoRoot: string;
  readonly vmDir: string;
  readonly cache: string;
  readonly env: NodeJS.ProcessEnv;
  readonly signal: AbortSignal;
  /** Writes one line to stdout. */
  readonly out: (line: string) => void;
}

export const MACHINE = { memoryMiB: 2048, dom0MiB: 768 } as const;

const LIMITS = {
  dom0ReadyMs: 300_000,
  totalMs: 1_800_000,
  poweroffMs: 60_000,
};

/** Hard link when possible (same file system), else copy. */
export function linkOrCopy(src: string, dest: string): void {
  try {
    linkSync(src, dest);
  } catch {
    copyFileSync(src, dest);
  }
}

/** Image set under the cache lock; installs build tools only when something must be built. */
export async function prepareImages(ctx: Context, force: boolean): Promise<ImageSet> {
  const unlock = await lockCache(ctx.cache, ctx.signal);
  try {
    return await ensureImages({
      cache: ctx.cache,
      vmDir: ctx.vmDir,
      force,
      env: ctx.env,
      beforeBuild: () => ensureHostTools(true),
    });
  } finally {
    unlock();
  }
}

export function imageTimingLine(images: ImageSet): string {
  const built = images.artifacts.filter((a) => !a.cached);
  const cold = images.artifacts.reduce((s, a) => s + a.buildMs, 0);
  const parts = images.artifacts
    .map((a) => `${a.kind} ${seconds(a.buildMs)}${a.cached ? '' : ' now'}`)
    .join(', ');
  const state = built.length === 0 ? 'all cached' : `built ${built.map((a) => a.kind).join(', ')}`;
  return `time image-build ${seconds(images.elapsedMs)} (${state}); cold build ${seconds(cold)} (${parts})`;
}

function bootResults(
  impl: Xenstored,
  boot: BootResult,
  resultsFile: string,
  serialLog: string,
): CheckResult[] {
  const fromFile = existsSync(resultsFile)
    ? parseCheckLines(readFileSync(resultsFile, 'utf8'))
    : [];
  const checks = fromFile.length > 0 ? fromFile : parseCheckLines(boot.consoleResults.join('\n'));
  const why = boot.fatal ?? boot.killed ?? `QEMU exited with ${boot.exitCode}`;
  const out: CheckResult[] = [];
  if (boot.marks.has('dom0-ready')) out.push({ status: 'PASS', name: 'boot', reason: '' });
  else
    out.push({
      status: 'FAIL',
      name: 'boot',
      reason: `dom0 never got ready: ${why} (serial log ${serialLog})`,
    });
  out.push(...checks);
  if (boot.marks.has('dom0-ready') && !boot.marks.has('checks-done')) {
    out.push({
      status: 'FAIL',
      name: 'checks-done',
      reason: `the check script did not finish: ${why} (serial log ${serialLog})`,
    });
  }
  return prefixed(impl, out);
}

export async function runTest(opts: TestOptions, ctx: Context): Promise<number> {
  const t0 = Date.now();
  const results: CheckResult[] = [];
  const timings: string[] = [];
  const logs: string[] = [];
  let runDir: string | null = null;
  let failedEarly = false;
  try {
    await ensureHostTools(false);
    const images = await prepareImages(ctx, false);
    timings.push(imageTimingLine(images));
    if (ctx.signal.aborted) throw new Error('interrupted');

    runDir = mkdtempSync(join(tmpdir(), 'xen-qemu-'));
    const bootDir = join(runDir, 'boot');
    mkdirSync(bootDir);
    // Our own links: a concurrent rebuild may replace the cache's files while we boot.
    const xenElf = join(bootDir, 'xen.elf');
    const vmlinuz = join(bootDir, 'vmlinuz');
    const dom0Initrd = join(bootDir, 'dom0.cpio');
    linkOrCopy(images.xenElf, xenElf);
    linkOrCopy(images.vmlinuz, vmlinuz);
    linkOrCopy(images.dom0Initrd, dom0Initrd);
    const ts = Date.now();
    const share = await buildShare({
      runDir,
      repoRoot: ctx.repoRoot,
      vmChecksDir: join(ctx.vmDir, 'checks'),
      nodeBinary: process.execPath,
      guestKernel: images.vmlinuz,
      guestInitrd: images.guestInitrd,
    });
    progress(
      `share ready in ${seconds(Date.now() - ts)}: node ${process.version}, ${share.packages.length} workspace packages`,
    );
    timings.push(`time share ${seconds(Date.now() - ts)}`);

    for (const impl of opts.xenstored) {
      if (ctx.signal.aborted) break;
      const nonce = randomBytes(4).toString('hex');
      writeFileSync(
        join(share.shareDir, 'config.env'),
        configEnv({ XQ_ONLY: opts.only ?? '', XQ_NONCE: nonce, XQ_XENSTORED: impl }),
      );
      const resultsFile = join(share.outDir, 'results.txt');
      rmSync(resultsFile, { force: true });
      const serialLog = join(runDir, `serial-${impl}.log`);
      const config: MachineConfig = {
        xenElf,
        vmlinuz,
        dom0Initrd,
        shareDir: share.shareDir,
        diskPath: share.diskPath,
        xenstored: impl,
        mode: 'test',
        ...MACHINE,
      };
      progress(`${impl}: booting Xen with ${impl === 'c' ? 'C xenstored' : 'oxenstored'}`);
      const boot = await bootForTest(config, serialLog, LIMITS, ctx.signal);
      const these = bootResults(impl, boot, resultsFile, serialLog);
      if (existsSync(resultsFile)) copyFileSync(resultsFile, join(runDir, `results-${impl}.txt`));
      for (const r of these) ctx.out(formatCheck(r));
      results.push(...these);
      logs.push(serialLog);
      const at = (m: string) => boot.marks.get(m);
      const fmt = (m: string) => (at(m) === undefined ? 'not reached' : seconds(at(m)!));
      timings.push(`time ${impl}/dom0-ready ${fmt('dom0-ready')}`);
      timings.push(`time ${impl}/guest-console ${fmt('guest-console')}`);
      const xsStart = at('xenstore');
      const xsEnd = at('xenstore-done');
      if (xsStart !== undefined && xsEnd !== undefined)
        timings.push(`time ${impl}/xenstore-checks ${seconds(xsEnd - xsStart)}`);
      timings.push(`time ${impl}/boot-to-poweroff ${seconds(boot.elapsedMs)}`);
    }
  } catch (err) {
    failedEarly = true;
    const message = (err as Error).message.replace(/\s+/g, ' ').trim();
    const r: CheckResult = { status: 'FAIL', name: 'harness', reason: message };
    ctx.out(formatCheck(r));
    results.push(r);
  }
  timings.push(`time total ${seconds(Date.now() - t0)}`);
  for (const t of timings) ctx.out(t);

  const summary = summarize(results);
  const ok = exitCodeFor(summary) === 0 && !ctx.signal.aborted;
  if (runDir !== null) {
    if (opts.keep) {
      ctx.out(`kept ${runDir}`);
    } else if (ok) {
      rmSync(runDir, { recursive: true, force: true });
    } else {
      // Keep what explains the failure: serial logs and results; drop the bulky share and disk.
      for (const p of ['share', 'boot', 'payload.img'])
        rmSync(join(runDir, p), { recursive: true, force: true });
      for (const l of logs) ctx.out(`serial log ${l}`);
    }
  }
  if (failedEarly && runDir === null) progress('failed before any boot');
  ctx.out(formatSummary(summary));
  if (ctx.signal.aborted) return 130;
  return ok ? 0 : 1;
}
