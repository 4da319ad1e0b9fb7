#!/usr/bin/env node
/**
 * xen-qemu: boots real Xen 4.17 (Debian's packages) under QEMU TCG with a PV dom0 and a PV guest,
 * and runs xencons checks there. See tools/xen-qemu/README.md.
 */
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HELP, parseArgs, UsageError } from './args.js';
import { cacheRoot } from './cache-key.js';
import { ensureHostTools, widenPath } from './host-tools.js';
import { progress, seconds } from './log.js';
import { runShell } from './shell.js';
import { type Context, imageTimingLine, prepareImages, runTest } from './test-run.js';

/** tools/xen-qemu, whether we run from dist/ or src/. */
const toolDir = join(dirname(fileURLToPath(import.meta.url)), '..');

export async function main(argv: readonly string[]): Promise<number> {
  let options: ReturnType<typeof parseArgs>;
  try {
    options = parseArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`xen-qemu: ${err.message}\n\n${HELP}`);
      return 2;
    }
    throw err;
  }
  if (options.command === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  widenPath(process.env);
  const controller = new AbortController();
  let signalCode = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signalCode = sig === 'SIGINT' ? 130 : 143;
    progress(`${sig}: stopping`);
    controller.abort();
  };
  const ctx: Context = {
    repoRoot: join(toolDir, '..', '..'),
    vmDir: join(toolDir, 'vm'),
    cache: cacheRoot(process.env, homedir()),
    env: process.env,
    signal: controller.signal,
    out: (line) => process.stdout.write(`${line}\n`),
  };
  if (options.command === 'shell') return runShell(options, ctx);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    if (options.command === 'build') {
      try {
        await ensureHostTools(true);
        const images = await prepareImages(ctx, options.force);
        ctx.out(`xen        ${images.xenElf}`);
        ctx.out(`vmlinuz    ${images.vmlinuz} (${images.kernelVersion})`);
        ctx.out(`dom0       ${images.dom0Initrd}`);
        ctx.out(`guest      ${images.guestInitrd}`);
        ctx.out(imageTimingLine(images));
        return 0;
      } catch (err) {
        process.stderr.write(`xen-qemu build: ${(err as Error).message}\n`);
        return signalCode || 1;
      }
    }
    const code = await runTest(options, ctx);
    return signalCode || code;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    progress(`done after ${seconds(process.uptime() * 1000)}`);
  }
}

process.exitCode = await main(process.argv.slice(2));
