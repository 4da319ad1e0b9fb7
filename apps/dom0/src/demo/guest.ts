// The demo guest: a separate process that maps the console page and joins a shell (in a pty made
// by util-linux `script`) to the guest side of the rings, as a PV guest's hvc0 + getty would.
// argv: <page file>; fd 3 is the doorbell socket to dom0.
import { spawn } from 'node:child_process';
import { Socket } from 'node:net';
import { requireNative } from '@xencons/native';
import { consoleFrontendRings } from '@xencons/ring';
import { Doorbell } from './doorbell.js';

const [pagePath] = process.argv.slice(2);
if (pagePath === undefined) {
  process.stderr.write('usage: demo-guest <page file> (with the doorbell on fd 3)\n');
  process.exit(2);
}

const native = requireNative();
const page = native.mapFile(pagePath, 0, 4096, true);
const rings = consoleFrontendRings(page);
const shell = spawn('script', ['-qfec', '/bin/sh -i', '/dev/null'], {
  stdio: ['pipe', 'pipe', 'inherit'],
  env: { ...process.env, PS1: 'guest$ ', TERM: process.env.TERM ?? 'vt100' },
});

const pending: Buffer[] = [];
const inBuf = new Uint8Array(1024);

/** Moves shell output into `out` as far as it fits; pauses the shell when the ring is full. */
function pumpOut(): void {
  let wrote = false;
  while (pending.length > 0) {
    const head = pending[0]!;
    const n = rings.out.write(head);
    if (n > 0) wrote = true;
    if (n === head.length) pending.shift();
    else {
      pending[0] = head.subarray(n);
      break;
    }
  }
  if (wrote) bell.notify();
  if (pending.length === 0) shell.stdout.resume();
  else shell.stdout.pause();
}

/** Feeds keystrokes from `in` to the shell. */
function pumpIn(): void {
  let n = rings.in.read(inBuf);
  let got = false;
  while (n > 0) {
    got = true;
    shell.stdin.write(Buffer.from(inBuf.subarray(0, n)));
    n = rings.in.read(inBuf);
  }
  if (got) bell.notify();
}

const bell = new Doorbell(new Socket({ fd: 3, readable: true, writable: true }), () => {
  pumpIn();
  pumpOut();
  if (exitCode !== null && pending.length === 0) finish();
});
shell.stdout.on('data', (chunk: Buffer) => {
  pending.push(chunk);
  pumpOut();
});
let exitCode: number | null = null;

function finish(): void {
  bell.close();
  native.unmap(page);
  process.exit(exitCode ?? 0);
}

shell.on('exit', (code) => {
  exitCode = code ?? 0;
  pumpOut();
  if (pending.length === 0) finish();
  // Otherwise the last output leaves as dom0 drains the ring (see the doorbell); give up after 2 s.
  else setTimeout(finish, 2000).unref();
});
pumpIn();
