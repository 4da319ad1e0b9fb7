// A guest for the daemon's tests: opens its secondary console `device/console/1` (the toolstack
// created it) and echoes what dom0 types there, prefixed; the primary console says when it is up.
import { openSecondaryConsole } from '@xencons/device';
import { openSimEventChannels } from '@xencons/evtchn';
import { openSimGnttab } from '@xencons/gnttab';
import { openGuest } from '@xencons/sim';

const guest = await openGuest();
const xs = await guest.xenstore();
const evtchn = await openSimEventChannels(guest.hypervisor);
const gnttab = openSimGnttab(guest.hypervisor);
// The toolstack may add the device after the guest started: wait for it, as a hotplug would.
const devicePath = `/local/domain/${guest.domid}/device/console/1`;
for await (const _event of await xs.watch(devicePath)) {
  if (await xs.exists(devicePath)) break;
}
const hvc1 = await openSecondaryConsole({ xs, evtchn, gnttab, domid: guest.domid, devid: 1 });
hvc1.stream.on('data', (chunk: Buffer) => hvc1.stream.write(`hvc1:${chunk.toString()}`));
guest.console.write('secondary up\n');
