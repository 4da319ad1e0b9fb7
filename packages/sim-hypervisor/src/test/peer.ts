// A separate OS process playing a domain in the hypervisor's tests. Commands come as argv:
//   pingpong DOMID PORT COUNT  bind to PORT of DOMID, answer COUNT notifies, then print "done"
//   hold DOMID PORT            bind to PORT of DOMID, print "ready", wait to be killed
//   atomics FILE COUNT         once word 1 of FILE (mapped shared) is set, add 1 to word 0 COUNT times
//   map DOMID REF              map grant REF of DOMID and print its first 16 bytes as hex
import { requireNative } from '@xencons/native';
import { connectHypervisor, simCredentialsFromEnv } from '../index.js';

const [command, ...rest] = process.argv.slice(2);
const args = rest.map(Number);

async function main(): Promise<void> {
  if (command === 'atomics') {
    const words = new Int32Array(requireNative().mapFile(rest[0] ?? '', 0, 4096, true));
    Atomics.add(words, 2, 1); // here
    while (Atomics.load(words, 1) === 0) {} // every adder starts together, so they contend
    for (let i = 0; i < (args[1] ?? 0); i++) Atomics.add(words, 0, 1);
    return;
  }
  const credentials = simCredentialsFromEnv();
  if (!credentials) throw new Error('XENCONS_SIM is not set');
  const client = await connectHypervisor(credentials);
  if (command === 'map') {
    const { pages } = await client.mapGrants(args[0] ?? 0, [args[1] ?? 0], false);
    const page = pages[0];
    if (!page) throw new Error('no page');
    const view = new Uint8Array(requireNative().mapFile(page.path, page.offset, 4096, false));
    process.stdout.write(`${Buffer.from(view.subarray(0, 16)).toString('hex')}\n`);
    client.close();
    return;
  }
  const handle = await client.openEventHandle();
  const port = await handle.bindInterdomain(args[0] ?? 0, args[1] ?? 0);
  if (command === 'hold') {
    process.stdout.write('ready\n');
    return; // the open handle keeps the process alive
  }
  const count = args[2] ?? 0;
  let seen = 0;
  let first = true;
  handle.onPending = () => {
    if (first) {
      first = false; // the event Xen raises on the newly bound port
      process.stdout.write('ready\n');
      return;
    }
    seen++;
    handle.notify(port);
    if (seen === count) {
      process.stdout.write('done\n');
      client.close();
    }
  };
}

main().catch((error: unknown) => {
  process.stderr.write(`${String((error as Error)?.stack ?? error)}\n`);
  process.exitCode = 1;
});
