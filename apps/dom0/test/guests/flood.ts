// A guest for the stress tests: writes numbered lines to its primary console as fast as the
// console takes them for FLOOD_SECONDS, then `END <lines>`, records the bytes it wrote in
// data/flood-total and idles (so the domain outlives the last bytes in the ring).
import { openGuest } from '@xencons/sim';

const seconds = Number(process.env.FLOOD_SECONDS ?? '5');
const guest = await openGuest();
const xs = await guest.xenstore();
const deadline = Date.now() + seconds * 1000;
let line = 0;
let bytes = 0;
const batch = (): string => {
  let text = '';
  for (let i = 0; i < 200; i++) text += `${++line} the quick brown fox jumps over the lazy dog\n`;
  return text;
};
while (Date.now() < deadline) {
  const text = batch();
  bytes += Buffer.byteLength(text);
  if (!guest.console.write(text))
    await new Promise((resolve) => guest.console.once('drain', resolve));
}
const end = `END ${line}\n`;
bytes += end.length;
await new Promise<void>((resolve) => guest.console.write(end, () => resolve()));
await xs.write(`/local/domain/${guest.domid}/data/flood-total`, `${bytes} ${line}`);
setInterval(() => {}, 1 << 30);
