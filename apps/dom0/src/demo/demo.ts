import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { ProgramIo } from '@xencons/cli';
import { loadNative, nativeUnavailableReason } from '@xencons/native';
import { consoleBackendRings } from '@xencons/ring';
import { Doorbell } from './doorbell.js';

const ESCAPE = 0x1d; // Ctrl-]

/**
 * The interim demo (until the simulated host and console daemon of issues 5-6 land): a guest
 * process running a shell, reached through a real `struct xencons_interface` page shared between
 * the two processes with MAP_SHARED. Keystrokes go through `in`, output comes back through `out`,
 * exactly as between xenconsoled and a PV guest; a doorbell socket stands in for the event channel.
 */
export async function runDemo(io: ProgramIo, guestScript = defaultGuestScript()): Promise<number> {
  const native = loadNative();
  if (native === null) {
    io.stderr.write(`xencons demo: needs the native addon: ${nativeUnavailableReason()}\n`);
    return 1;
  }
  const dir = mkdtempSync(join(tmpdir(), 'xencons-demo-'));
  const pagePath = join(dir, 'console-page');
  writeFileSync(pagePath, new Uint8Array(4096));
  const page = native.mapFile(pagePath, 0, 4096, true);
  const rings = consoleBackendRings(page);
  const guest = spawn(process.execPath, [guestScript, pagePath], {
    stdio: ['ignore', 'inherit', 'inherit', 'pipe'],
  });
  const stdin = io.stdin as typeof io.stdin & { setRawMode?: (raw: boolean) => void };
  const raw = stdin.isTTY === true && typeof stdin.setRawMode === 'function';
  const outBuf = new Uint8Array(2048);
  const input: Buffer[] = [];

  const drainOut = (): boolean => {
    let n = rings.out.read(outBuf);
    let got = false;
    while (n > 0) {
      got = true;
      io.stdout.write(Buffer.from(outBuf.subarray(0, n)));
      n = rings.out.read(outBuf);
    }
    return got;
  };
  const feedIn = (): boolean => {
    let wrote = false;
    while (input.length > 0) {
      const head = input[0]!;
      const n = rings.in.write(head);
      if (n > 0) wrote = true;
      if (n === head.length) input.shift();
      else {
        input[0] = head.subarray(n);
        break;
      }
    }
    return wrote;
  };
  const bell = new Doorbell(guest.stdio[3] as Duplex, () => {
    const a = drainOut();
    const b = feedIn();
    if (a || b) bell.notify();
  });

  return await new Promise<number>((resolve) => {
    let done = false;
    const finish = (code: number) => {
      if (done) return;
      done = true;
      if (raw) stdin.setRawMode?.(false);
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      process.off('SIGHUP', onSignal);
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      stdin.pause();
      if (guest.exitCode === null && guest.pid !== undefined) guest.kill('SIGTERM');
      bell.close();
      drainOut();
      native.unmap(page);
      rmSync(dir, { recursive: true, force: true });
      io.stderr.write('\r\n[xencons demo: detached, guest stopped]\r\n');
      resolve(code);
    };
    const onData = (chunk: Buffer) => {
      // Like xenconsole: the escape key detaches only when it arrives alone.
      if (chunk.length === 1 && chunk[0] === ESCAPE) return finish(0);
      input.push(chunk);
      if (feedIn()) bell.notify();
    };
    const onEnd = () => {
      // Piped input ended: pass it on as Ctrl-D, as a terminal would, and let the guest's shell
      // finish what it was sent; stop it if it has not exited after 10 s.
      input.push(Buffer.of(0x04));
      if (feedIn()) bell.notify();
      setTimeout(() => finish(0), 10_000).unref();
    };
    const onSignal = (signal: NodeJS.Signals) => finish(signal === 'SIGINT' ? 130 : 143);
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    process.once('SIGHUP', onSignal);
    guest.on('exit', () => {
      if (done) return;
      drainOut();
      finish(0);
    });
    io.stderr.write(
      'xencons demo: a shell in a guest process, through a shared xencons_interface page\r\n' +
        'Escape character is ^] (Ctrl-]).\r\n',
    );
    if (raw) stdin.setRawMode?.(true);
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    stdin.resume();
  });
}

function defaultGuestScript(): string {
  // Built layout: dist/cli.js and dist/demo/guest.js side by side.
  return join(dirname(fileURLToPath(import.meta.url)), 'demo', 'guest.js');
}
