// Many simulated guests' primary consoles in ONE process, for the 500-guest daemon figures of
// `pnpm bench console` (500 node processes would need ~20 GB). Each domain's process on the
// simulated host is `sh` then `sleep`, which only leaves its credential in TOKENS/<domid>.tok;
// this process then acts as every one of those guests with its own credential: for each domain
// its own hypervisor connection, its console page mapped and its console port attached
// (openGuestPrimaryConsole with that domain's XENCONS_SIM_* environment), a banner written, and
// every input byte echoed back.
//
// Usage: node console-guests.js TOKENS_DIR   (XENCONS_SIM set to the host's folder)
// Prints `ready N` on stdout when every console is open. A line `boot BYTES` on stdin makes every
// console write BYTES of boot-log-like text (as a booting kernel does on hvc0), then `booted N`
// is printed once every console's ring took it. Exits when stdin closes or on SIGTERM.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type GuestPrimaryConsole, openGuestPrimaryConsole } from '@xencons/device';

const tokens = process.argv[2];
const sim = process.env.XENCONS_SIM;
if (!tokens || !sim) throw new Error('usage: XENCONS_SIM=DIR node console-guests.js TOKENS_DIR');

const entries = readdirSync(tokens)
  .filter((f) => f.endsWith('.tok'))
  .map((f) => {
    const [domid, token] = readFileSync(join(tokens, f), 'utf8').trim().split(/\s+/);
    return { domid: domid!, token: token! };
  });

const consoles: GuestPrimaryConsole[] = [];
const stop = async () => {
  await Promise.all(consoles.map((c) => c.close().catch(() => {})));
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.stdin.on('end', () => void stop());
let pending = '';
process.stdin.on('data', (bytes: Buffer) => {
  pending += bytes.toString();
  for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
    const [op, arg] = pending.slice(0, nl).split(' ');
    pending = pending.slice(nl + 1);
    if (op === 'boot') void boot(Number(arg));
  }
});

function bootLog(name: string, bytes: number): string {
  let text = '';
  for (let i = 0; text.length < bytes; i++) {
    const t = (i * 0.0137).toFixed(6).padStart(12);
    text += `[${t}] ${name}: bench boot message ${i}, console output as a kernel prints it\r\n`;
  }
  return text.slice(0, bytes);
}

async function boot(bytes: number): Promise<void> {
  await Promise.all(
    consoles.map(
      (c) =>
        new Promise<void>((resolve) => c.stream.write(bootLog(c.name, bytes), () => resolve())),
    ),
  );
  process.stdout.write(`booted ${consoles.length}\n`);
}

let next = 0;
const worker = async () => {
  while (next < entries.length) {
    const { domid, token } = entries[next++]!;
    const guest = await openGuestPrimaryConsole({
      env: { XENCONS_SIM: sim, XENCONS_SIM_DOMID: domid, XENCONS_SIM_TOKEN: token },
    });
    consoles.push(guest);
    const { stream } = guest;
    stream.on('error', () => {});
    stream.on('data', (bytes: Buffer) => stream.write(bytes));
    stream.write(`bench guest ${guest.name} (domain ${guest.domid}) ready\r\n`);
  }
};
await Promise.all(Array.from({ length: 16 }, worker));
process.stdout.write(`ready ${consoles.length}\n`);
