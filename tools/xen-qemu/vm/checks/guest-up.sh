#!/bin/sh
# Creates the test guest `xqguest` with `xl create`: the dom0 kernel as a PV domU, the guest
# initramfs from the share, and the payload disk (QEMU's read-only virtio disk, /dev/vda in dom0)
# as its xvda through blkback. NONCE goes into the guest's banner.
# Usage (in dom0): sh /mnt/payload/vm/guest-up.sh    then: xl console xqguest (Ctrl-] detaches)
NONCE=${NONCE:-$(cut -c1-8 /proc/sys/kernel/random/uuid)}
CFG=/run/xq-guest.cfg
DISK=''
# The hotplug script is ours (vm/block-phy): Debian's /etc/xen/scripts/block does the same for a
# phy device after sharing checks that fork a few hundred processes, about a minute under TCG.
[ -b /dev/vda ] && DISK="disk = [ 'format=raw,vdev=xvda,access=ro,script=$(dirname "$0")/block-phy,target=/dev/vda' ]"
cat >"$CFG" <<CFG
name = "xqguest"
type = "pv"
kernel = "/mnt/host/images/vmlinuz"
ramdisk = "/mnt/host/images/guest.cpio"
extra = "console=hvc0 quiet xq.nonce=$NONCE"
memory = 128
vcpus = 1
on_poweroff = "destroy"
on_reboot = "destroy"
on_crash = "destroy"
$DISK
CFG
# Markers for the host's timings (the console is where the host reads them).
printf '\nXQ-MARK xl-create-start\n' >/dev/console
timeout 300 xl create "$CFG"
rc=$?
printf '\nXQ-MARK xl-create-end %s\n' "$rc" >/dev/console
exit $rc
