// A guest program for the host's tests: opens its domain, checks xenstore from the inside and
// reports on its primary console, then echoes console input back until told to quit.
import { isXenconsError } from '@xencons/errors';
import { openGuest } from '../guest.js';

const guest = await openGuest();
const xs = await guest.xenstore();
const say = (text: string) => guest.console.write(`${text}\n`);
const name = await xs.readString(`/local/domain/${guest.domid}/name`);
say(`name=${name}`);
await xs.write(`/local/domain/${guest.domid}/data/probe`, 'written by the guest');
say(`data=${await xs.readString(`/local/domain/${guest.domid}/data/probe`)}`);
const other = Number(process.env.PROBE_OTHER ?? '0');
try {
  await xs.readString(`/local/domain/${other}/name`);
  say('other=readable');
} catch (error) {
  say(`other=${isXenconsError(error) ? error.code : String(error)}`);
}
try {
  await xs.write(`/local/domain/${guest.domid}/console/ring-ref`, '1');
  say('ring-ref=writable');
} catch (error) {
  say(`ring-ref=${isXenconsError(error) ? error.code : String(error)}`);
}
say('ready');
guest.console.on('data', (chunk: Buffer) => {
  if (chunk.includes('quit')) {
    guest.close();
    process.exit(0);
  }
  guest.console.write(chunk);
});
