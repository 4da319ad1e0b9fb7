#!/bin/sh
# Runs inside the test guest (busybox sh), typed into its hvc0 shell by agent-checks.mjs from
# dom0: makes a local account and starts xencons-agent (apps/guest) from the payload disk on every
# secondary console (hvc0 keeps its shell), with the `login` backend: the guest's own login(1),
# busybox's, checks the password against /etc/shadow and starts the user's shell, as agetty's
# login does.
#
#   sh /mnt/payload/vm/agent-guest.sh NONCE USER UID 'SHA512-CRYPT-HASH'
#
# The password itself never reaches the guest's consoles: dom0 sends only its crypt(3) hash. The
# agent's log (text lines: its stderr is a tty) goes to hvc0, which dom0 reads in the console
# daemon's log of this guest. Prints `XQ-AGENT-STARTED nonce=NONCE pid=PID` once it started the
# agent (again, without a second agent, when typed twice).
NONCE=$1
USER_NAME=$2
USER_ID=$3
HASH=$4
PIDFILE=/tmp/xq-agent.pid
if [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  printf '\nXQ-AGENT-STARTED nonce=%s pid=%s\n' "$NONCE" "$(cat "$PIDFILE")"
  exit 0
fi
# guest.sh's loop keeps a plain shell on /dev/hvc1 (console-checks.mjs); it leaves hvc1 alone
# while this file exists, so the agent is the only reader of the secondary consoles.
: >/tmp/xq-hvc1-agent

# The account: busybox has no adduser here, so the lines are written as adduser would. root is
# locked (no password login); the user's shell is busybox's sh, its prompt says who it is.
HOME_DIR=/home/$USER_NAME
umask 022
mkdir -p /etc "$HOME_DIR" /run
grep -q '^root:' /etc/passwd 2>/dev/null || printf 'root:x:0:0:root:/root:/bin/sh\n' >>/etc/passwd
grep -q '^root:' /etc/group 2>/dev/null || printf 'root:x:0:\n' >>/etc/group
grep -q "^$USER_NAME:" /etc/passwd ||
  printf '%s:x:%s:%s:xencons test user:%s:/bin/sh\n' "$USER_NAME" "$USER_ID" "$USER_ID" "$HOME_DIR" >>/etc/passwd
grep -q "^$USER_NAME:" /etc/group || printf '%s:x:%s:\n' "$USER_NAME" "$USER_ID" >>/etc/group
umask 077
grep -q '^root:' /etc/shadow 2>/dev/null || printf 'root:!:1::::::\n' >>/etc/shadow
grep -q "^$USER_NAME:" /etc/shadow || printf '%s:%s:1::::::\n' "$USER_NAME" "$HASH" >>/etc/shadow
chmod 600 /etc/shadow
umask 022
printf "PS1='xq-%s\$ '\n" "$USER_NAME" >"$HOME_DIR/.profile"
chown -R "$USER_ID:$USER_ID" "$HOME_DIR"

# The agent, in its own session (no controlling tty: it opens the consoles O_NOCTTY).
cd /
LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu XENCONS_LOG=info \
  setsid /mnt/payload/node /mnt/payload/repo/apps/guest/dist/cli.js run \
  --skip hvc0 --auth login --log-console none --control /run/xencons-agent.sock \
  </dev/null >/dev/hvc0 2>&1 &
echo $! >"$PIDFILE"
printf '\nXQ-AGENT-STARTED nonce=%s pid=%s\n' "$NONCE" "$!"
