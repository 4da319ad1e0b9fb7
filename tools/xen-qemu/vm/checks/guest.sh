#!/bin/sh
# Runs inside the test guest (busybox sh) from its payload disk, mounted read-only at /mnt/payload:
# the host's node binary with Debian's glibc and libstdc++ from the guest image.
out=$(LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu \
  /mnt/payload/node /mnt/payload/vm/guest-hello.mjs "$NONCE" 2>&1)
case "$out" in
  *XQ-GUEST-NODE*) printf '\n%s\n' "$out" ;;
  *) printf '\nXQ-GUEST-NODE FAIL %s\n' "$(printf '%s' "$out" | tr '\n' ' ' | cut -c1-200)" ;;
esac
# A shell on the second console, /dev/hvc1, once dom0 gives this guest a `device/console/1` and
# hvc_xen connects it (console-checks.mjs does, with our daemon as its backend). The hvc nodes
# exist from boot; opening one fails (ENODEV) until its console is there, so the loop tries to
# open it once a second, in the background, for the guest's lifetime. A marker goes to hvc0.
# No setsid: busybox's forks and returns when it cannot make a session, which would start a
# second shell on the same console; without a controlling tty the shell just has no job control.
# While /tmp/xq-hvc1-agent exists (agent-guest.sh makes it) the agent serves hvc1 instead.
(
  while true; do
    if [ ! -e /tmp/xq-hvc1-agent ] && (: <>/dev/hvc1) 2>/dev/null; then
      printf '\nXQ-GUEST-HVC1 nonce=%s\n' "$NONCE"
      sh -i <>/dev/hvc1 >&0 2>&1
    fi
    sleep 1
  done
) </dev/null &
