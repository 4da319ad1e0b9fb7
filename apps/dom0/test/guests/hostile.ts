// A hostile guest: maps its own console page and writes impossible ring indices, garbage and a
// flood, then vanishes in the middle of a write.
import { requireNative } from '@xencons/native';
import type { GuestStartInfo } from '@xencons/sim';
import { connectHypervisor, simCredentialsFromEnv } from '@xencons/sim-hypervisor';

const credentials = simCredentialsFromEnv();
if (!credentials) throw new Error('not a guest');
const hc = await connectHypervisor(credentials);
const info = (await hc.getDomainInfo()) as unknown as GuestStartInfo;
const { pages } = await hc.mapForeignFrames(hc.domid, [info.console.frame], true);
const page = pages[0];
if (!page) throw new Error('no page');
const bytes = new Uint8Array(requireNative().mapFile(page.path, page.offset, 4096, true));
const words = new Uint32Array(bytes.buffer);
const handle = await hc.openEventHandle();
await handle.attach(info.console.port);
const OUT_CONS = 3080 / 4;
const OUT_PROD = 3084 / 4;
const mode = process.env.HOSTILE ?? 'indices';
for (let round = 0; round < 2000; round++) {
  if (mode === 'indices') {
    words[OUT_PROD] = (Math.random() * 2 ** 32) >>> 0;
    words[OUT_CONS] = (Math.random() * 2 ** 32) >>> 0;
  } else {
    for (let i = 1024; i < 3072; i++) bytes[i] = (Math.random() * 256) | 0;
    words[OUT_PROD] = ((words[OUT_PROD] ?? 0) + 2048) >>> 0;
  }
  handle.notify(info.console.port);
  if (round % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
}
process.kill(process.pid, 'SIGKILL'); // vanish mid-write
