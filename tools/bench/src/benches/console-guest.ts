// The guest program of `pnpm bench console`: one simulated domain, its own OS process, on its
// primary console through @xencons/device (openGuestPrimaryConsole). MODE picks what it does:
//
//  - out: writes the bench pattern (see console-pattern.ts) as fast as the console takes it, in
//    application writes of CHUNK bytes with the stream's own backpressure (write() false → wait
//    for 'drain'). Input bytes are commands: 'g' starts, 's' stops (the pattern carries on from
//    where it stopped), so the measuring side decides when it is running.
//  - in: reads the pattern from offset 0 and checks every byte; writes '.' per 64 KiB checked, or
//    '!' and exits 1 at the first wrong byte.
//  - echo: writes back every input byte.
//
// "ready" goes to stderr (the guest's log on the simulated host) once the console is open, so
// the console carries nothing but the measured bytes.
import { once } from 'node:events';
import { openGuestPrimaryConsole } from '@xencons/device';
import { BENCH_PATTERN, PATTERN_LENGTH, PatternChecker } from './console-pattern.js';

/** One '.' of acknowledgement per this many input bytes checked. */
const ACK_BYTES = 65536;
const mode = process.env.MODE ?? '';
const chunk = Number(process.env.CHUNK ?? 65536);

const guest = await openGuestPrimaryConsole();
const { stream } = guest;
stream.on('error', (error) => {
  process.stderr.write(`console error: ${error.message}\n`);
  process.exit(1);
});
process.on('SIGTERM', () => {
  void guest.close().finally(() => process.exit(0));
});

if (mode === 'out') {
  if (!(chunk > 0 && chunk <= 1 << 20)) throw new Error(`bad CHUNK ${chunk}`);
  let running = false;
  let writing = false;
  let at = 0;
  const run = async () => {
    if (writing) return;
    writing = true;
    while (running) {
      const ok = stream.write(BENCH_PATTERN.subarray(at, at + chunk));
      at = (at + chunk) % PATTERN_LENGTH;
      if (!ok) await once(stream, 'drain');
    }
    writing = false;
  };
  stream.on('data', (bytes: Buffer) => {
    for (const byte of bytes) {
      if (byte === 0x67 /* g */) running = true;
      else if (byte === 0x73 /* s */) running = false;
    }
    if (running) void run();
  });
} else if (mode === 'in') {
  const checker = new PatternChecker();
  stream.on('data', (bytes: Buffer) => {
    const before = Math.floor(checker.bytes / ACK_BYTES);
    if (!checker.check(bytes)) {
      process.stderr.write(`input corrupt after byte ${checker.bytes}\n`);
      stream.write('!', () => process.exit(1));
      return;
    }
    const dots = Math.floor(checker.bytes / ACK_BYTES) - before;
    if (dots > 0) stream.write('.'.repeat(dots));
  });
} else if (mode === 'echo') {
  stream.on('data', (bytes: Buffer) => stream.write(bytes));
} else {
  throw new Error(`MODE must be out, in or echo, not ${JSON.stringify(mode)}`);
}
process.stderr.write('ready\n');
