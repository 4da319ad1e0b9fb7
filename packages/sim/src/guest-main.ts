// The process the simulated host starts for a guest without a program of its own: it opens the
// domain and joins a command's stdin/stdout (and stderr) to the primary console. Without a
// command it writes a banner and keeps the console open, like a guest with nothing on hvc0.
// Exits with the command's status; SIGTERM (the host destroying the domain) ends it.
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { openGuest } from './guest.js';

const { values } = parseArgs({ options: { cmd: { type: 'string' } }, strict: true });
const guest = await openGuest();
guest.console.on('error', (error) => {
  process.stderr.write(`console: ${error.message}\n`);
  process.exit(1);
});
let stopCommand = () => {};
process.on('SIGTERM', () => {
  stopCommand();
  guest.close();
  process.exit(143);
});
// The host is gone (killed, or the domain destroyed): a guest does not outlive its hypervisor.
guest.hypervisor.on('close', () => {
  stopCommand();
  process.exit(1);
});

if (values.cmd === undefined) {
  guest.console.write(`xencons simulated guest ${guest.name} (domain ${guest.domid})\r\n`);
  guest.console.resume(); // input is read and dropped
} else {
  // Its own process group, so stopping the guest stops everything the command started.
  const child = spawn('/bin/sh', ['-c', values.cmd], {
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  stopCommand = () => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  };
  guest.console.pipe(child.stdin);
  child.stdin.on('error', () => {});
  child.stdout.pipe(guest.console, { end: false });
  child.stderr.pipe(guest.console, { end: false });
  child.on('close', (code, signal) => {
    // 'close' comes after its output was read: let that reach the ring before the domain goes away.
    guest.console.end(() => {
      guest.close();
      process.exit(code ?? (signal ? 128 : 1));
    });
  });
}
