// The PAM helper of @xencons/login-shell: one login in a process of its own, as login(1) does.
//
// PAM modules act on the process that calls them: pam_loginuid writes /proc/self/loginuid,
// pam_limits sets its rlimits, pam_keyinit replaces its session keyring, pam_systemd moves it
// into the user's logind session. None of that may happen to a long-running agent, so every
// PAM transaction runs here, and the shell is this process's child and inherits all of it.
//
// Plain JavaScript (no build step), started by login-shell as
//   node pam-helper.mjs '<json config>'
// with fd 3 a socket to login-shell (frames, see pam-protocol.ts) and fd 4 the pty slave.
// Steps: pam_start → authenticate → acct_mgmt (→ chauthtok when the password expired) →
// initgroups → setcred(ESTABLISH) → open_session → the user's shell on the pty as the user →
// wait for it → close_session → setcred(DELETE) → pam_end. The PAM calls block this process
// while the person types; that is all it does.
import { closeSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { requireNative } from '@xencons/native';

const CONV_FD = 3;
const SLAVE_FD = 4;
const PAM_SUCCESS = 0;
const PAM_USER_UNKNOWN = 10;
const PAM_NEW_AUTHTOK_REQD = 12;
const PAM_USER = 2;
const PAM_TTY = 3;
const PAM_RUSER = 8;
const PAM_DISALLOW_NULL_AUTHTOK = 0x1;
const PAM_ESTABLISH_CRED = 0x2;
const PAM_DELETE_CRED = 0x4;
const PAM_CHANGE_EXPIRED_AUTHTOK = 0x20;

/** Writes one frame to login-shell; false if it is gone. */
function send(kind, value) {
  const payload = Buffer.from(JSON.stringify(value));
  const frame = Buffer.alloc(5 + payload.length);
  frame[0] = kind.charCodeAt(0);
  frame.writeUInt32BE(payload.length, 1);
  payload.copy(frame, 5);
  try {
    let off = 0;
    while (off < frame.length) off += writeSync(CONV_FD, frame, off);
    return true;
  } catch {
    return false;
  }
}

function main() {
  const cfg = JSON.parse(process.argv[2] ?? '{}');
  const n = requireNative();
  n.fdSetBlocking(CONV_FD, true);

  let h;
  try {
    h = n.pamStart(cfg.service, cfg.user, CONV_FD);
  } catch (err) {
    send('R', { stage: 'start', ok: false, status: -1, message: String(err.message), delayMs: 0 });
    return 1;
  }
  n.pamSetItem(h, PAM_TTY, cfg.tty);
  if (cfg.ruser) n.pamSetItem(h, PAM_RUSER, cfg.ruser);

  const fail = (stage, status, message) => {
    send('R', {
      stage,
      ok: false,
      status,
      message: message ?? n.pamStrerror(h, status),
      delayMs: Math.round(n.pamTakeFailDelay(h) / 1000),
      user: n.pamGetItem(h, PAM_USER) ?? undefined,
    });
    n.pamEnd(h, status);
    return 1;
  };

  let st = n.pamCall(h, 'authenticate', cfg.allowNullPassword ? 0 : PAM_DISALLOW_NULL_AUTHTOK);
  if (st !== PAM_SUCCESS) return fail('auth', st);
  st = n.pamCall(h, 'acct_mgmt', 0);
  if (st === PAM_NEW_AUTHTOK_REQD) {
    st = n.pamCall(h, 'chauthtok', PAM_CHANGE_EXPIRED_AUTHTOK);
    if (st !== PAM_SUCCESS) return fail('chauthtok', st);
  } else if (st !== PAM_SUCCESS) {
    return fail('account', st);
  }

  const user = n.pamGetItem(h, PAM_USER) ?? cfg.user;
  const pw = n.getpwnam(user);
  if (pw === null) return fail('account-lookup', PAM_USER_UNKNOWN, `no passwd entry for ${user}`);
  // initgroups before setcred: pam_group adds to this list.
  n.setgroups(n.getgrouplist(pw.name, pw.gid));
  st = n.pamCall(h, 'setcred', PAM_ESTABLISH_CRED);
  if (st !== PAM_SUCCESS) return fail('setcred', st);
  st = n.pamCall(h, 'open_session', 0);
  if (st !== PAM_SUCCESS) {
    n.pamCall(h, 'setcred', PAM_DELETE_CRED);
    return fail('session', st);
  }

  const shell = pw.shell || '/bin/sh';
  const env = {
    ...cfg.env,
    HOME: pw.dir || '/',
    USER: pw.name,
    LOGNAME: pw.name,
    SHELL: shell,
  };
  // Module-provided variables (pam_env, pam_systemd's XDG_*) win, as with login(1).
  for (const kv of n.pamGetenvlist(h)) {
    const eq = kv.indexOf('=');
    if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  send('R', {
    stage: 'session',
    ok: true,
    status: 0,
    message: 'session open',
    delayMs: 0,
    user: pw.name,
  });

  let end;
  try {
    const child = n.ptySpawn(
      SLAVE_FD,
      shell,
      [`-${basename(shell)}`],
      Object.entries(env).map(([k, v]) => `${k}=${v}`),
      pw.dir || '/',
      pw.uid,
      pw.gid,
      null, // the groups set above (and by pam_group) are inherited
    );
    closeSync(SLAVE_FD);
    if (child.pidfd >= 0) closeSync(child.pidfd);
    send('S', { pid: child.pid });
    end = n.childReap(child.pid, true);
  } catch (err) {
    end = { exitCode: null, signal: null, error: String(err.message) };
  }
  n.pamCall(h, 'close_session', 0);
  n.pamCall(h, 'setcred', PAM_DELETE_CRED);
  n.pamEnd(h, PAM_SUCCESS);
  send('X', end);
  return 0;
}

process.exitCode = main();
