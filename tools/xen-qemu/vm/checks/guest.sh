#!/bin/sh
# Runs inside the test guest (busybox sh) from its payload disk, mounted read-only at /mnt/payload:
# the host's node binary with Debian's glibc and libstdc++ from the guest image.
out=$(LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu \
  /mnt/payload/node /mnt/payload/vm/guest-hello.mjs "$NONCE" 2>&1)
case "$out" in
  *XQ-GUEST-NODE*) printf '\n%s\n' "$out" ;;
  *) printf '\nXQ-GUEST-NODE FAIL %s\n' "$(printf '%s' "$out" | tr '\n' ' ' | cut -c1-200)" ;;
esac
