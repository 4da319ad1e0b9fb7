#!/bin/sh
# The xen-qemu checks, run in dom0 by /init once the toolstack is up (share at /mnt/host, payload
# at /mnt/payload). One result line per check, `PASS name` or `FAIL name: reason`, appended to
# /mnt/host/out/results.txt and echoed to the console as `XQ-RESULT ...`. Progress markers
# (`XQ-MARK name`) go to the console, where the host stamps them with its own clock.
# Settings come from /mnt/host/config.env: XQ_ONLY (grep -E pattern over check names, empty for
# all), XQ_NONCE (the guest's banner nonce), XQ_XENSTORED (c|ocaml).
# Every wait is bounded.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/xen-4.17/bin
XQ_ONLY=''
XQ_NONCE=none
XQ_XENSTORED=ocaml
[ -f /mnt/host/config.env ] && . /mnt/host/config.env
OUT=/mnt/host/out/results.txt
WORK=/run/xq
NODE=/mnt/payload/node
VM=/mnt/payload/vm
GUEST=xqguest
LOG=/var/log/xen/console/guest-$GUEST.log
mkdir -p "$WORK" /mnt/host/out
: >"$OUT"

mark() { printf '\nXQ-MARK %s\n' "$*"; }
result() {
  line="$1 $2"
  [ -n "${3:-}" ] && line="$line: $(printf '%s' "$3" | tr '\n\r' '  ' | cut -c1-300)"
  printf '%s\n' "$line" >>"$OUT"
  printf '\nXQ-RESULT %s\n' "$line"
}
pass() { result PASS "$1"; }
fail() { result FAIL "$1" "$2"; }
selected() { [ -z "$XQ_ONLY" ] || printf '%s\n' "$1" | grep -Eq -- "$XQ_ONLY"; }
any_selected() {
  for n in "$@"; do selected "$n" && return 0; done
  return 1
}
# run_script MARK FAILNAME SECONDS SCRIPT ARGS...: runs one check script of this folder with a
# time limit between `XQ-MARK MARK` and `XQ-MARK MARK-done`. Its PASS/FAIL lines become results,
# its NOTE lines notes; a script that ended badly without a FAIL line fails FAILNAME with the tail
# of its stderr, which is shown in any case.
run_script() {
  rs_mark=$1 rs_fail=$2 rs_secs=$3 rs_script=$4
  shift 4
  mark "$rs_mark"
  timeout -k 5 "$rs_secs" "$NODE" "$VM/$rs_script" "$@" >"$WORK/$rs_fail.out" 2>"$WORK/$rs_fail.err"
  rs_rc=$?
  grep -E '^(PASS|FAIL) ' "$WORK/$rs_fail.out" | while IFS= read -r l; do
    printf '%s\n' "$l" >>"$OUT"
    printf '\nXQ-RESULT %s\n' "$l"
  done
  grep -E '^NOTE ' "$WORK/$rs_fail.out" | while IFS= read -r l; do printf '\nXQ-%s\n' "$l"; done
  if [ $rs_rc -ne 0 ] && ! grep -q '^FAIL ' "$WORK/$rs_fail.out"; then
    fail "$rs_fail" "$rs_script exited $rs_rc: $(tail -n 5 "$WORK/$rs_fail.err")"
  fi
  [ -s "$WORK/$rs_fail.err" ] && { printf '%s stderr:\n' "${rs_script%.mjs}"; tail -n 40 "$WORK/$rs_fail.err"; }
  mark "$rs_mark-done"
}
# wait_for SECONDS COMMAND...: polls COMMAND every 0.2 s until it succeeds; false on timeout.
wait_for() {
  limit=$(($1 * 5))
  shift
  n=0
  until "$@" >/dev/null 2>&1; do
    n=$((n + 1))
    [ $n -le $limit ] || return 1
    sleep 0.2
  done
}
log_has() { [ -f "$LOG" ] && grep -aq -- "$1" "$LOG"; }

# ---- toolstack -----------------------------------------------------------------------------
if selected xenstored; then
  name=$(timeout 10 xenstore-read /local/domain/0/name 2>&1)
  case "$XQ_XENSTORED" in c) proc=xenstored ;; *) proc=oxenstored ;; esac
  if [ "$name" != Domain-0 ]; then
    fail xenstored "xenstore-read /local/domain/0/name gave '$name'"
  elif ! pidof "$proc" >/dev/null; then
    fail xenstored "$proc is not the running xenstored ($(pidof xenstored oxenstored))"
  else
    pass xenstored
  fi
fi
if selected xl-list; then
  out=$(timeout 60 xl list 2>&1)
  if printf '%s\n' "$out" | grep -q '^Domain-0 *0 '; then pass xl-list; else fail xl-list "$out"; fi
fi
if selected xenconsoled; then
  if pidof xenconsoled >/dev/null; then pass xenconsoled; else fail xenconsoled 'not running'; fi
fi
if selected dom0-node; then
  out=$(timeout 120 "$NODE" -e 'console.log(`node ${process.version} ${1 + 1}`)' 2>&1)
  case "$out" in
    "node v"*" 2") pass dom0-node ;;
    *) fail dom0-node "$NODE: $out" ;;
  esac
fi

# ---- a PV guest and its console ------------------------------------------------------------
NATIVE_CHECKS='native native-load native-evtchn native-grant-map native-console-page native-ring-codec'
XS_CHECKS='xs xs-socket-rw xs-socket-dir-perms xs-socket-watch xs-socket-tx xs-domain xs-xenbus-rw xs-xenbus-dir-perms xs-xenbus-watch xs-xenbus-tx xs-ours xs-cmp-rw xs-cmp-dir xs-cmp-paths xs-cmp-perms xs-cmp-watch xs-cmp-tx xs-cmp-quota xs-cmp-misc'
# The conformance cases of packages/gnttab (src/conformance/cases.ts), prefixed gnttab-.
GNTTAB_CHECKS='gnttab gnttab-errnos gnttab-share-map-self gnttab-peer-shares gnttab-peer-maps gnttab-read-only-grant gnttab-grant-for-another-domain gnttab-unknown-grant gnttab-ended-grant gnttab-end-while-mapped gnttab-peer-killed gnttab-frame-map-unprivileged gnttab-frame-unknown gnttab-primary-console gnttab-close-releases gnttab-bad-arguments'
GNTTAB_GUEST_CHECKS='gnttab gnttab-errnos gnttab-frame-unknown gnttab-primary-console'
# The console daemon and `xencons console` (console-checks.mjs); they stop and restart xenconsoled,
# so they run after everything that reads xenconsoled's log of the guest.
CONSOLE_CHECKS='console console-pty-mode console-secondary console-ring-mode console-xenconsoled-back'
# xencons-agent in the guest on a secondary console, a login from dom0 (agent-checks.mjs); after
# the console checks, which leave xenconsoled running again.
AGENT_CHECKS='agent agent-start agent-console agent-wrong-password agent-login agent-no-secret agent-debug agent-console-removed'
GUEST_CHECKS="guest-create guest-console-log guest-console-pty guest-node guest-destroy native-console-page native-ring-codec xs-socket-dir-perms xs-xenbus-dir-perms xs-domain $GNTTAB_GUEST_CHECKS $CONSOLE_CHECKS $AGENT_CHECKS"
domid=''
if any_selected $GUEST_CHECKS; then
  mark guest-create
  out=$(NONCE=$XQ_NONCE sh "$VM/guest-up.sh" 2>&1)
  rc=$?
  if [ $rc -eq 0 ] && domid=$(xl domid $GUEST 2>/dev/null); then
    mark guest-created "$domid"
    selected guest-create && pass guest-create
  else
    domid=''
    [ $rc -eq 124 ] && out="timed out after 300 s; $out"
    selected guest-create && fail guest-create "xl create: $out"
    printf '%s\n' "$out"
  fi
fi

if [ -n "$domid" ]; then
  banner="XQ-GUEST-BANNER nonce=$XQ_NONCE"
  if wait_for 240 log_has "$banner"; then
    mark guest-console
    selected guest-console-log && pass guest-console-log
  else
    selected guest-console-log && fail guest-console-log "no '$banner' in $LOG after 240 s"
  fi

  # The guest prints XQ-GUEST-READY after its node run; everything below needs a quiet guest.
  wait_for 300 log_has "XQ-GUEST-READY nonce=$XQ_NONCE" || printf 'guest not ready after 300 s\n'

  if selected guest-node; then
    line=$(grep -a 'XQ-GUEST-NODE' "$LOG" 2>/dev/null | tr -d '\r' | tail -n 1)
    case "$line" in
      *"XQ-GUEST-NODE ok "*) mark guest-node && pass guest-node ;;
      '') fail guest-node "no XQ-GUEST-NODE line on the guest console" ;;
      *) fail guest-node "$line" ;;
    esac
  fi

  if selected guest-console-pty; then
    # Two-way through the pty xenconsoled publishes in console/tty: type a command, read its output.
    # The expected text (XQ-PTY-42) is computed by the guest's shell, so the echoed input differs.
    tty=''
    wait_for 20 xenstore-read "/local/domain/$domid/console/tty" &&
      tty=$(xenstore-read "/local/domain/$domid/console/tty")
    if [ -z "$tty" ] || [ ! -c "$tty" ]; then
      fail guest-console-pty "no pty in /local/domain/$domid/console/tty ('$tty')"
    else
      stty -F "$tty" raw -echo 2>/dev/null
      timeout 90 cat "$tty" >"$WORK/pty.out" 2>&1 &
      catpid=$!
      sleep 0.5
      printf 'echo XQ-PTY-$((6*7))\r' >"$tty"
      if wait_for 60 grep -aq 'XQ-PTY-42' "$WORK/pty.out"; then
        pass guest-console-pty
      else
        fail guest-console-pty "no XQ-PTY-42 from $tty within 60 s (read: $(tr -cd '[:print:]' <"$WORK/pty.out" | tail -c 120))"
      fi
      kill "$catpid" 2>/dev/null
      wait "$catpid" 2>/dev/null
    fi
  fi
fi

# ---- the native core against the real devices ----------------------------------------------
if any_selected $NATIVE_CHECKS; then
  run_script native native 300 native-checks.mjs --domid "${domid:-}" --nonce "$XQ_NONCE" --log "$LOG" --only "$XQ_ONLY"
fi

# ---- the xenstore client against this boot's xenstored (socket and /dev/xen/xenbus), then our
# daemon's answers next to this xenstored's -------------------------------------------------------
if any_selected $XS_CHECKS; then
  run_script xenstore xs 600 xenstore-checks.mjs --domid "${domid:-}" --xenstored "$XQ_XENSTORED" --only "$XQ_ONLY"
fi

# ---- @xencons/gnttab's conformance suite on the Linux devices (gntalloc, gntdev, privcmd) -----
if any_selected $GNTTAB_CHECKS; then
  run_script gnttab gnttab 300 gnttab-checks.mjs --domid "${domid:-}" --only "$XQ_ONLY"
fi

# ---- @xencons/evtchn's conformance suite on /dev/xen/evtchn (dom0 to itself) ---------------
EVTCHN_CHECKS='evtchn evtchn-alloc-bind-notify evtchn-bind-raises-event evtchn-callback-and-iterator evtchn-mask-until-unmask evtchn-unbind evtchn-close evtchn-misuse-not-bound evtchn-misuse-bind evtchn-misuse-cross-process evtchn-lost-wakeup-spin evtchn-lost-wakeup-yield evtchn-lost-wakeup-masked evtchn-ring-exchange evtchn-peer-killed'
if any_selected $EVTCHN_CHECKS; then
  run_script evtchn evtchn 900 evtchn-checks.mjs --only "$XQ_ONLY"
fi

# ---- the console daemon against real Xen: on xenconsoled's pty, on the ring with xenconsoled
# stopped, and as the backend of a secondary console the guest's hvc_xen connects as /dev/hvc1 ----
if any_selected $CONSOLE_CHECKS; then
  run_script console console 700 console-checks.mjs --domid "${domid:-}" --guest "$GUEST" --nonce "$XQ_NONCE" --only "$XQ_ONLY"
  # The checks restart xenconsoled whatever happened; guest-destroy and the log tail below use it.
  pidof xenconsoled >/dev/null || printf 'xenconsoled is not running after the console checks\n'
fi

# ---- xencons-agent inside the guest, a login through `xencons console --num 1` ---------------
if any_selected $AGENT_CHECKS; then
  run_script agent agent 900 agent-checks.mjs --domid "${domid:-}" --guest "$GUEST" --nonce "$XQ_NONCE" --only "$XQ_ONLY"
fi

if [ -n "$domid" ]; then
  timeout 60 xl destroy "$domid" >/dev/null 2>&1
  if selected guest-destroy; then
    if wait_for 90 sh -c "! xl list $GUEST"; then pass guest-destroy; else fail guest-destroy 'still listed after 90 s'; fi
  fi
  printf '\n---- xenconsoled log of %s (tail) ----\n' "$GUEST"
  tail -c 3000 "$LOG" 2>/dev/null | tr -d '\r'
  printf '\n---- end ----\n'
fi
mark checks-done
sync
