// A guest program for the device tests, one process per simulated domain; MODE picks what it
// does. It reports on its primary console (or its stderr log) in lines the tests wait for.
import { createHash } from 'node:crypto';
import { openSimEventChannels } from '@xencons/evtchn';
import { openSimGnttab } from '@xencons/gnttab';
import { consoleFrontendRings, XENCONS_INTERFACE } from '@xencons/ring';
import { openGuest } from '@xencons/sim';
import { connectHypervisor, simCredentialsFromEnv } from '@xencons/sim-hypervisor';
import {
  openGuestPrimaryConsole,
  openSecondaryConsole,
  type SecondaryConsoleFrontend,
} from '../index.js';
import { patternBytes } from './pattern.js';

const env = process.env;
const mode = env.MODE ?? '';
const log = (line: string) => process.stderr.write(`${line}\n`);

function writeAsync(stream: NodeJS.WritableStream, data: Uint8Array | string): Promise<void> {
  return new Promise((resolve, reject) =>
    stream.write(data, (err) => (err ? reject(err) : resolve())),
  );
}

/** Output of SEND pattern bytes and a check of RECV pattern bytes of input, at once. */
async function primaryStream(): Promise<void> {
  const { stream } = await openGuestPrimaryConsole();
  const send = Number(env.SEND);
  const recv = Number(env.RECV);
  const seedOut = Number(env.SEED_OUT);
  const seedIn = Number(env.SEED_IN);
  log(`pumped ${stream.pumped}`);
  stream.on('error', (err) => log(`console error ${err.message}`));
  const reading = new Promise<string>((resolve) => {
    const hash = createHash('sha256');
    let got = 0;
    let ok = true;
    stream.on('data', (chunk: Buffer) => {
      const want = patternBytes(seedIn, got, chunk.length);
      if (Buffer.compare(chunk, want) !== 0) ok = false;
      hash.update(chunk);
      got += chunk.length;
      if (got >= recv) resolve(`${ok && got === recv ? 'ok' : 'BAD'} ${hash.digest('hex')}`);
    });
  });
  for (let at = 0; at < send; ) {
    const n = Math.min(send - at, 1 + ((at * 7919) % 6000));
    await writeAsync(stream, patternBytes(seedOut, at, n));
    at += n;
  }
  const verdict = await reading;
  await writeAsync(stream, `\nDONE in=${verdict}\n`);
}

/** Commands on the primary console drive secondary consoles: open N, close N, send N text. */
async function secondary(): Promise<void> {
  const guest = await openGuest();
  guest.hypervisor.on('close', () => process.exit(1));
  const xs = await guest.xenstore();
  const evtchn = await openSimEventChannels(guest.hypervisor);
  const gnttab = openSimGnttab(guest.hypervisor);
  const say = (line: string) => guest.console.write(`${line}\n`);
  const consoles = new Map<number, SecondaryConsoleFrontend>();
  let pending = '';
  const run = async (line: string) => {
    const [cmd, n, ...rest] = line.split(' ');
    const devid = Number(n);
    try {
      if (cmd === 'open') {
        const fe = await openSecondaryConsole({
          xs,
          evtchn,
          gnttab,
          domid: guest.domid,
          devid,
          closeTimeout: 20_000,
        });
        consoles.set(devid, fe);
        fe.stream.on('error', (err) => say(`error ${devid} ${(err as { code?: string }).code}`));
        fe.stream.pipe(fe.stream);
        fe.on('close', (by) => say(`closed ${devid} ${by}`));
        say(`opened ${devid}`);
      } else if (cmd === 'close') {
        await consoles.get(devid)?.close();
        consoles.delete(devid);
      } else if (cmd === 'send') {
        consoles.get(devid)?.stream.write(`${rest.join(' ')}\n`);
      } else if (cmd === 'state') {
        const fe = consoles.get(devid);
        say(`state ${devid} ${fe?.state} ${fe?.backendState}`);
      }
    } catch (err) {
      say(`failed ${cmd} ${devid} ${(err as { code?: string }).code ?? (err as Error).message}`);
    }
  };
  let queue = Promise.resolve();
  guest.console.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      queue = queue.then(() => run(line));
    }
  });
  say('ready');
}

/** The raw console page and port, as a hostile guest sees them. */
async function rawPrimary() {
  const hc = await connectHypervisor(simCredentialsFromEnv()!);
  const info = (await hc.getDomainInfo()) as { console: { frame: number; port: number } };
  const evtchn = await openSimEventChannels(hc);
  await evtchn.attach(info.console.port);
  const mapping = await openSimGnttab(hc).mapFrames(hc.domid, [info.console.frame]);
  return { page: mapping.buffer, notify: () => evtchn.notify(info.console.port) };
}

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 5));
}

/** Says hello properly, waits until dom0 took it, then writes impossible indices and garbage. */
async function hostileIndices(): Promise<void> {
  const { page, notify } = await rawPrimary();
  const rings = consoleFrontendRings(page);
  rings.out.write(new TextEncoder().encode('hello\n'));
  notify();
  const words = new Uint32Array(page);
  const prod = XENCONS_INTERFACE.out.prodOffset / 4;
  const cons = XENCONS_INTERFACE.out.consOffset / 4;
  await until(() => words[cons] === words[prod]);
  const bytes = new Uint8Array(page);
  for (let i = 0; i < 3072; i++) bytes[i] = (i * 131) & 0xff; // garbage in both rings
  words[prod] = (words[cons]! + 2049 + Math.floor(Math.random() * 0x7fff_0000)) >>> 0;
  for (let i = 0; i < 50; i++) notify();
  log('corrupted');
}

/** Streams pattern bytes and kills itself (SIGKILL) in the middle of it. */
async function vanish(): Promise<void> {
  const { stream } = await openGuestPrimaryConsole();
  const after = Number(env.VANISH_AFTER);
  const seed = Number(env.SEED_OUT);
  for (let at = 0; ; ) {
    const n = 1000 + (at % 777);
    await writeAsync(stream, patternBytes(seed, at, n));
    at += n;
    if (at >= after) {
      // A native pump may still hold written bytes on their way to the ring: let them arrive
      // (dom0 is reading), so everything up to `after` is in the ring when we go.
      while (stream.bytesOut < at) await new Promise((resolve) => setTimeout(resolve, 1));
      // Mid-write: the next chunk is half in the ring when we go.
      stream.write(patternBytes(seed, at, 3000));
      process.kill(process.pid, 'SIGKILL');
    }
  }
}

/** A frontend that writes RING_REF and PORT of its choosing, then says Initialised. */
async function secondaryBadNodes(): Promise<void> {
  const guest = await openGuest();
  guest.hypervisor.on('close', () => process.exit(1));
  const xs = await guest.xenstore();
  const path = `/local/domain/${guest.domid}/device/console/${env.DEVID}`;
  // The toolstack makes the device after the domain: wait for it.
  const watch = await xs.watch(`${path}/backend`);
  for await (const _ of watch) if (await xs.exists(`${path}/backend`)) break;
  await xs.transaction(async (tx) => {
    await tx.write(`${path}/ring-ref`, env.RING_REF ?? '');
    await tx.write(`${path}/port`, env.PORT ?? '');
  });
  await xs.write(`${path}/state`, '3');
  log('published');
}

/** A frontend that connects properly, then corrupts its out ring under the backend. */
async function secondaryCorrupt(): Promise<void> {
  const guest = await openGuest();
  guest.hypervisor.on('close', () => process.exit(1));
  const xs = await guest.xenstore();
  const evtchn = await openSimEventChannels(guest.hypervisor);
  const gnttab = openSimGnttab(guest.hypervisor);
  const path = `/local/domain/${guest.domid}/device/console/${env.DEVID}`;
  const backend = await xs.readString(`${path}/backend`);
  const shared = await gnttab.share(0);
  const port = await evtchn.allocUnbound(0);
  await xs.write(`${path}/ring-ref`, String(shared.refs[0]));
  await xs.write(`${path}/port`, String(port));
  await xs.write(`${path}/state`, '3');
  const watch = await xs.watch(`${backend}/state`);
  for await (const _ of watch) {
    if ((await xs.readStringOptional(`${backend}/state`)) === '4') break;
  }
  await xs.write(`${path}/state`, '4');
  const rings = consoleFrontendRings(shared.buffer);
  rings.out.write(new TextEncoder().encode('hi from a bad frontend\n'));
  evtchn.notify(port);
  const words = new Uint32Array(shared.buffer);
  const prod = XENCONS_INTERFACE.out.prodOffset / 4;
  const cons = XENCONS_INTERFACE.out.consOffset / 4;
  await until(() => words[cons] === words[prod]);
  words[prod] = (words[cons]! - 1) >>> 0;
  evtchn.notify(port);
  log('corrupted');
}

/** A well-behaved guest: a banner, then its primary console echoes what it gets. */
async function echo(): Promise<void> {
  const guest = await openGuest();
  guest.hypervisor.on('close', () => process.exit(1));
  guest.console.write(`echo guest ${guest.name} (domain ${guest.domid})\n`);
  guest.console.pipe(guest.console);
}

const modes: Record<string, () => Promise<void>> = {
  echo,
  'primary-stream': primaryStream,
  secondary,
  'hostile-indices': hostileIndices,
  vanish,
  'secondary-bad-nodes': secondaryBadNodes,
  'secondary-corrupt': secondaryCorrupt,
};
const main = modes[mode];
if (main === undefined) {
  log(`unknown MODE ${JSON.stringify(mode)}`);
  process.exit(2);
}
main().catch((err) => {
  log(`failed: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
// Stays up until the host destroys the domain (SIGTERM), or its parent (the test) is gone.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(1);
}, 1000);
