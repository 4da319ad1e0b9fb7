/** `xen-qemu shell`: the test machine booted to an interactive dom0 shell on this terminal. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ShellOptions } from './args.js';
import { ensureHostTools } from './host-tools.js';
import { progress } from './log.js';
import { bootInteractive } from './qemu.js';
import { buildShare, configEnv } from './share.js';
import { type Context, linkOrCopy, MACHINE, prepareImages } from './test-run.js';

export async function runShell(opts: ShellOptions, ctx: Context): Promise<number> {
  await ensureHostTools(false);
  const images = await prepareImages(ctx, false);
  const runDir = mkdtempSync(join(tmpdir(), 'xen-qemu-shell-'));
  try {
    const bootDir = join(runDir, 'boot');
    mkdirSync(bootDir);
    for (const [src, name] of [
      [images.xenElf, 'xen.elf'],
      [images.vmlinuz, 'vmlinuz'],
      [images.dom0Initrd, 'dom0.cpio'],
    ] as const) {
      linkOrCopy(src, join(bootDir, name));
    }
    const share = await buildShare({
      runDir,
      repoRoot: ctx.repoRoot,
      vmChecksDir: join(ctx.vmDir, 'checks'),
      nodeBinary: process.execPath,
      guestKernel: images.vmlinuz,
      guestInitrd: images.guestInitrd,
    });
    writeFileSync(join(share.shareDir, 'config.env'), configEnv({ XQ_XENSTORED: opts.xenstored }));
    progress(
      `booting an interactive dom0 (${opts.xenstored === 'c' ? 'C xenstored' : 'oxenstored'}); ` +
        'about 20-40 s to the `dom0#` prompt. Leave with `exit` (powers off) or Ctrl-a x.',
    );
    if (!process.stdin.isTTY) progress('stdin is not a terminal: the console is not interactive');
    return await bootInteractive({
      xenElf: join(bootDir, 'xen.elf'),
      vmlinuz: join(bootDir, 'vmlinuz'),
      dom0Initrd: join(bootDir, 'dom0.cpio'),
      shareDir: share.shareDir,
      diskPath: share.diskPath,
      xenstored: opts.xenstored,
      mode: 'shell',
      ...MACHINE,
    });
  } finally {
    rmSync(runDir, { recursive: true, force: true });
  }
}
