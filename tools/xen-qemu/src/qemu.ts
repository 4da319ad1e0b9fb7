/**
 * Booting Xen under qemu-system-x86_64 (TCG): the command line of the measured recipe, the serial
 * console stamped with the host clock into a log, progress markers, bounded waits, and only our
 * own QEMU ever killed (by the PID we spawned, then reaped).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import type { Xenstored } from './args.js';
import { progress } from './log.js';
import { parseCheckLine, parseMark } from './results.js';

export interface MachineConfig {
  readonly xenElf: string;
  readonly vmlinuz: string;
  readonly dom0Initrd: string;
  /** Folder shared read-write with dom0 as virtio-9p tag `host`. */
  readonly shareDir: string;
  /** Raw disk image attached read-only as dom0's /dev/vda (handed on to the guest). */
  readonly diskPath: string | null;
  readonly xenstored: Xenstored;
  readonly mode: 'test' | 'shell';
  readonly memoryMiB: number;
  readonly dom0MiB: number;
}

/** QEMU's -initrd/-append take commas and spaces as separators: refuse paths containing them. */
function safePath(p: string): string {
  if (/[\s,]/.test(p)) throw new Error(`path must not contain spaces or commas for QEMU: ${p}`);
  return p;
}

export function qemuArgs(c: MachineConfig): string[] {
  const xen = [
    'console=com1',
    'com1=115200,8n1',
    `dom0_mem=${c.dom0MiB}M,max:${c.dom0MiB}M`,
    'dom0_max_vcpus=2',
    'loglvl=all',
    'guest_loglvl=all',
    // Xen scrubs all free RAM after boot (idle-time by default), which under TCG makes the
    // first `xl create` wait minutes for the pages it allocates. A test machine has no secrets.
    'bootscrub=false',
  ];
  const dom0 = [
    'console=hvc0',
    'earlyprintk=xen',
    'quiet',
    `xq.mode=${c.mode}`,
    `xq.xenstored=${c.xenstored}`,
  ];
  const args = [
    '-machine',
    'pc',
    '-accel',
    'tcg',
    // -cpu max crashes the PV dom0 under TCG (SMAP emulation); qemu64 works.
    '-cpu',
    'qemu64',
    '-smp',
    '2',
    '-m',
    String(c.memoryMiB),
    '-nodefaults',
    '-display',
    'none',
    '-no-reboot',
  ];
  if (c.mode === 'shell') {
    args.push(
      '-chardev',
      'stdio,id=con,mux=on,signal=off',
      '-serial',
      'chardev:con',
      '-mon',
      'chardev=con,mode=readline',
    );
  } else {
    args.push('-serial', 'stdio', '-monitor', 'none');
  }
  args.push(
    '-virtfs',
    `local,path=${safePath(c.shareDir)},mount_tag=host,security_model=none,id=host0`,
  );
  if (c.diskPath)
    args.push('-drive', `file=${safePath(c.diskPath)},if=virtio,format=raw,readonly=on`);
  args.push(
    '-kernel',
    safePath(c.xenElf),
    '-append',
    xen.join(' '),
    '-initrd',
    `${safePath(c.vmlinuz)} ${dom0.join(' ')},${safePath(c.dom0Initrd)}`,
  );
  return args;
}

export interface BootLimits {
  /** From QEMU start to the `dom0-ready` marker. */
  readonly dom0ReadyMs: number;
  /** From QEMU start to QEMU's exit. */
  readonly totalMs: number;
  /** From the `poweroff` marker to QEMU's exit. */
  readonly poweroffMs: number;
}

export interface BootResult {
  /** Milliseconds from QEMU start at which each marker was first seen. */
  readonly marks: ReadonlyMap<string, number>;
  /** `XQ-RESULT` lines seen on the console (the share's results file is authoritative). */
  readonly consoleResults: string[];
  /** Why the boot was cut short, or null when QEMU exited by itself. */
  readonly killed: string | null;
  readonly exitCode: number | null;
  readonly elapsedMs: number;
  /** A `fatal` marker's text from /init, if any. */
  readonly fatal: string | null;
}

/** Kills the QEMU we spawned: SIGTERM, then SIGKILL after 10 s; resolves once it is reaped. */
function stop(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  child.kill('SIGTERM');
  const hard = setTimeout(() => child.kill('SIGKILL'), 10_000);
  return exited.then(() => clearTimeout(hard));
}

/** Boots the machine with its serial console on a pipe; returns when QEMU has exited and been reaped. */
export async function bootForTest(
  config: MachineConfig,
  serialLog: string,
  limits: BootLimits,
  signal: AbortSignal,
): Promise<BootResult> {
  const args = qemuArgs({ ...config, mode: 'test' });
  const log = createWriteStream(serialLog);
  log.write(`# qemu-system-x86_64 ${args.join(' ')}\n`);
  const t0 = Date.now();
  const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => resolve(code));
    child.on('error', (err) => {
      log.write(`# spawn error: ${err.message}\n`);
      resolve(null);
    });
  });
  progress(`${config.xenstored}: QEMU started (pid ${child.pid}), serial log ${serialLog}`);

  const marks = new Map<string, number>();
  const consoleResults: string[] = [];
  let fatal: string | null = null;
  let killed: string | null = null;
  let pending = '';
  let poweroffTimer: NodeJS.Timeout | null = null;

  const onLine = (line: string) => {
    const ms = Date.now() - t0;
    log.write(`[${(ms / 1000).toFixed(3).padStart(8)}] ${line}\n`);
    const mark = parseMark(line);
    if (mark && !marks.has(mark.name)) {
      marks.set(mark.name, ms);
      if (mark.name === 'fatal') fatal = mark.detail;
      if (mark.name !== 'test-exit')
        progress(`${config.xenstored}: ${mark.name} at ${(ms / 1000).toFixed(1)}s`);
      if (mark.name === 'poweroff' && poweroffTimer === null) {
        poweroffTimer = setTimeout(
          () => kill(`no power-off within ${limits.poweroffMs / 1000} s`),
          limits.poweroffMs,
        );
      }
    }
    if (line.includes('XQ-RESULT ')) {
      const r = parseCheckLine(line);
      if (r) {
        consoleResults.push(line.slice(line.lastIndexOf('XQ-RESULT ') + 10).replace(/\r/g, ''));
        progress(`${config.xenstored}: ${r.status} ${r.name}${r.reason ? `: ${r.reason}` : ''}`);
      }
    }
  };
  const onData = (chunk: Buffer) => {
    pending += chunk.toString('latin1');
    let nl = pending.indexOf('\n');
    while (nl >= 0) {
      onLine(pending.slice(0, nl).replace(/\r+$/, ''));
      pending = pending.slice(nl + 1);
      nl = pending.indexOf('\n');
    }
    if (pending.length > 65536) {
      onLine(pending);
      pending = '';
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', (c: Buffer) => log.write(`# qemu stderr: ${c.toString('utf8')}`));

  const kill = (why: string) => {
    if (killed !== null) return;
    killed = why;
    log.write(`# xen-qemu: stopping QEMU pid ${child.pid}: ${why}\n`);
    progress(`${config.xenstored}: stopping QEMU (pid ${child.pid}): ${why}`);
    void stop(child, exited);
  };
  const readyTimer = setTimeout(() => {
    if (!marks.has('dom0-ready')) kill(`dom0 not ready within ${limits.dom0ReadyMs / 1000} s`);
  }, limits.dom0ReadyMs);
  const totalTimer = setTimeout(
    () => kill(`still running after ${limits.totalMs / 1000} s`),
    limits.totalMs,
  );
  const onAbort = () => kill('interrupted');
  signal.addEventListener('abort', onAbort, { once: true });
  if (signal.aborted) onAbort();

  const exitCode = await exited;
  clearTimeout(readyTimer);
  clearTimeout(totalTimer);
  if (poweroffTimer) clearTimeout(poweroffTimer);
  signal.removeEventListener('abort', onAbort);
  if (pending) onLine(pending);
  const elapsedMs = Date.now() - t0;
  log.write(`# QEMU exited with ${exitCode} after ${(elapsedMs / 1000).toFixed(1)} s\n`);
  await new Promise<void>((r) => log.end(r));
  return { marks, consoleResults, killed, exitCode, elapsedMs, fatal };
}

/** Boots to an interactive dom0 shell on this terminal; resolves with QEMU's exit code. */
export async function bootInteractive(config: MachineConfig): Promise<number> {
  const args = qemuArgs({ ...config, mode: 'shell' });
  const child = spawn('qemu-system-x86_64', args, { stdio: 'inherit' });
  // QEMU owns the terminal now; our own Ctrl-C handling must not kill it (signal=off passes
  // Ctrl-C through to dom0). A SIGTERM to us is passed on to our QEMU only.
  const onSigint = () => {};
  const onSigterm = () => child.kill('SIGTERM');
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  try {
    return await new Promise<number>((resolve) => {
      child.on('exit', (code, sig) => resolve(code ?? (sig ? 128 : 1)));
      child.on('error', () => resolve(127));
    });
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
  }
}
