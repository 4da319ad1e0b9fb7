// xencons-agent (apps/guest) inside the PV test guest, on a secondary console our console daemon
// serves, and a person's login from dom0 through `xencons console --num 1`. Run by dom0-run.sh
// with the host's node binary from the payload, after console-checks.mjs (which restarts
// xenconsoled; this script runs the daemon on xenconsoled's pty, as console-pty-mode does).
// Prints one line per check, `PASS name` or `FAIL name: reason`, and `NOTE agent: ...` lines.
//
//   node agent-checks.mjs --domid N --guest xqguest --nonce NONCE [--only PATTERN]
//
// Checks, in this order (each bounded; every process started here is stopped by its PID):
//   agent-start           a local account made in the guest (passwd, group and shadow lines with
//                         a SHA-512 crypt hash made in dom0; the password never enters the
//                         guest's consoles) and the agent started there (vm/checks/
//                         agent-guest.sh, typed into the guest's hvc0 shell through
//                         `xencons console`): its log, on hvc0, says it is ready
//   agent-console         `device/console/1` made with createSecondaryConsole, served by our
//                         daemon: hvc_xen connects it, the agent opens the new hvc (its log says
//                         which: hvc1) and `xencons console --num 1` shows its login prompt
//   agent-wrong-password  name, then a wrong password: busybox login(1) refuses it after its
//                         delay (`Login incorrect`) and asks again
//   agent-login           name and password: a shell as the user (`id -un` prints the name),
//                         `exit`, and the agent's login prompt comes back
//   agent-no-secret       neither password is in the console client's transcript, the daemon's
//                         logs of the guest (hvc0 with the agent's log, and console 1) or its
//                         stderr; the console 1 log does hold the dialogue
//   agent-debug           `xencons debug GUEST s` (out of band, through the agent's xenstore
//                         node) answers with the agent's sessions, console hvc1 among them
//   agent-console-removed device/console/1 removed (removeSecondaryConsole): the agent's log
//                         says that console is gone (it follows consoles going away)

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { consoleTools, readText, tail, waitUntil, xsRead } from './console-lib.mjs';
import { checkRunner, describeError, expect, tool } from './lib.mjs';

const runner = checkRunner({
  options: {
    domid: { type: 'string', default: '' },
    guest: { type: 'string', default: 'xqguest' },
    nonce: { type: 'string', default: 'none' },
    'work-dir': { type: 'string', default: '/run/xq' },
    repo: { type: 'string', default: fileURLToPath(new URL('../repo/', import.meta.url)) },
    // Where the guest sees this folder (the payload disk, mounted at /mnt/payload there too).
    'guest-vm-dir': { type: 'string', default: '/mnt/payload/vm' },
  },
  noteTag: 'agent',
  // Node starts in dom0 and in the guest take 3-30 s under TCG on a busy host.
  timeoutMs: 300_000,
});
const { opts, check, line, note } = runner;
const CHECKS = [
  'agent-start',
  'agent-console',
  'agent-wrong-password',
  'agent-login',
  'agent-no-secret',
  'agent-debug',
  'agent-console-removed',
];
if (!runner.anySelected(CHECKS)) process.exit(0);

const selectedChecks = CHECKS.filter((n) => runner.selected(n));
const bail = (reason) => {
  for (const name of selectedChecks) line('FAIL', name, reason);
  process.exit(1);
};
const cliJs = `${opts.repo}apps/dom0/dist/cli.js`;
const agentJs = `${opts.repo}apps/guest/dist/cli.js`;
const deviceJs = `${opts.repo}packages/device/dist/index.js`;
const xenstoreJs = `${opts.repo}packages/xenstore/dist/index.js`;
if (opts.domid === '') bail('no guest (guest-create failed)');
for (const f of [cliJs, agentJs, deviceJs, xenstoreJs]) if (!existsSync(f)) bail(`not built: ${f}`);
const domid = Number(opts.domid);
const guest = opts.guest;
const work = `${opts['work-dir']}/agent-${process.pid}`;
mkdirSync(work, { recursive: true });
const t0 = performance.now();
const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
const tools = consoleTools({ runner, repo: opts.repo, work, guest, domid });

// The guest user and its passwords: fresh each run, known only to this process (and, as a
// crypt(3) hash, to the guest's /etc/shadow).
const user = 'xqagent';
const uid = 1500;
const password = `Xq-${randomBytes(9).toString('base64url')}-7`;
const wrong = `Bad-${randomBytes(9).toString('base64url')}-3`;

/** SHA-512 crypt of the password by dom0's busybox, the password on its stdin (never argv). */
function cryptHash(secret) {
  const r = spawnSync('busybox', ['mkpasswd', '-m', 'sha512', '-P', '0'], {
    input: secret,
    encoding: 'utf8',
    timeout: 30_000,
  });
  const hash = (r.stdout ?? '').trim();
  if (r.status !== 0 || !/^\$6\$[./0-9A-Za-z]+\$[./0-9A-Za-z]{86}$/.test(hash))
    throw new Error(`busybox mkpasswd: status ${r.status ?? r.signal}, ${(r.stderr ?? '').trim()}`);
  return hash;
}

let daemon = null;
let agentReady = false;
let hvc = null; // the agent's name for the console it opened (hvc1)
let client = null; // `xencons console --num 1`, shared by the login checks
let xs = null;
let device = null;
const clients = [];

try {
  daemon = await tools.startDaemon('agent', []);
  const up = await tools.consoleUp(daemon, 'pty|grant|frame');
  note(`daemon: '${up}'`);
} catch (err) {
  if (daemon) await daemon.stop();
  bail(`the console daemon: ${describeError(err)}`);
}

/** The agent's log: its lines on hvc0, in the daemon's log of the guest's primary console. */
const hvc0Log = () => readText(daemon.log);

/**
 * The agent's log line with message `msg` and field `key` matching `value` (a pattern), in
 * either of its formats (text on a tty: `INFO msg key=value`; JSON lines otherwise); the match's
 * group 1 is the value.
 */
const logField = (msg, key, value) =>
  new RegExp(`${msg}(?:"[^\\n]*"${key}":"| [^\\n]*${key}=)(${value})`).exec(hvc0Log());

await check('agent-start', async () => {
  const hash = cryptHash(password);
  const command = `sh ${opts['guest-vm-dir']}/agent-guest.sh ${opts.nonce} ${user} ${uid} '${hash}'`;
  const { tries } = await tools.typeThroughConsole(
    daemon.socket,
    0,
    command,
    `XQ-AGENT-STARTED nonce=${opts.nonce}`,
    120_000,
  );
  const started = performance.now();
  await waitUntil(
    240_000,
    `the agent did not say 'xencons-agent ready' on hvc0; hvc0 log ends '${tail(hvc0Log(), 300)}'`,
    () => {
      const log = hvc0Log();
      const failed = /[^\n]*cannot start[^\n]*/.exec(log);
      if (failed) throw new Error(`the agent says '${tail(failed[0], 300)}'`);
      return log.includes('xencons-agent ready');
    },
    500,
  );
  runner.lap('agent-ready-in-guest', started);
  agentReady = true;
  const ready = /[^\n]*xencons-agent ready[^\n]*/.exec(hvc0Log())?.[0] ?? '';
  note(`started after ${tries} command(s); '${tail(ready, 200)}'`);
});

await check('agent-console', async () => {
  expect(agentReady, 'the agent is not running (agent-start)');
  const { createSecondaryConsole } = await import(deviceJs);
  const { openXenstore } = await import(xenstoreJs);
  xs = await openXenstore();
  device = await createSecondaryConsole(xs, { domid, devid: 1 });
  const front = device.frontendPath;
  await waitUntil(
    120_000,
    `the guest's frontend did not connect ${front}`,
    async () => {
      const [fe, be] = await Promise.all([
        xsRead(`${front}/state`).catch(() => '?'),
        xsRead(`${device.backendPath}/state`).catch(() => '?'),
      ]);
      return fe === '4' && be === '4';
    },
    500,
  );
  const entry = await tools.consoleConnected(daemon, 1);
  // The agent finds the new hvc through its xenstore watch on device/console (or its scan).
  const opened = await waitUntil(
    120_000,
    `the agent did not open a new console; hvc0 log ends '${tail(hvc0Log(), 300)}'`,
    () => logField('console up', 'console', 'hvc\\d+'),
    500,
  );
  hvc = opened[1];
  note(`${front} connected, daemon pty ${entry.tty}; the agent serves ${hvc}`);
  expect(hvc !== 'hvc0', 'the agent took hvc0, which it was told to skip');
  client = await tools.attach(daemon.socket, 1);
  clients.push(client);
  client.send('\r');
  await client.expect(/login: $/, "the agent's login prompt on console 1", 90_000);
});

await check('agent-wrong-password', async () => {
  expect(client !== null, 'no login prompt on console 1 (agent-console)');
  client.send(`${user}\r`);
  await client.expect('Password: ', "login(1)'s password prompt", 90_000);
  const sent = Date.now();
  client.send(`${wrong}\r`);
  await client.expect('Login incorrect', 'the refusal', 90_000);
  const delay = Date.now() - sent;
  // busybox login waits 3 s before it says so (pause_after_failed_login).
  expect(delay >= 1000, `refused after ${delay} ms, without a delay`);
  await client.expect(/login: $/, "login(1)'s own prompt again", 60_000);
  note(`wrong password refused after ${delay} ms`);
});

await check('agent-login', async () => {
  expect(client !== null, 'no login prompt on console 1 (agent-console)');
  client.send('\r');
  await client.expect(/login: $/, 'a login prompt', 60_000);
  client.send(`${user}\r`);
  await client.expect('Password: ', "login(1)'s password prompt", 90_000);
  client.send(`${password}\r`);
  await client.expect(`xq-${user}$ `, "the user's shell prompt", 90_000);
  client.send('id -un\r');
  await client.expect(new RegExp(`[\\r\\n]${user}\\r\\n`), 'the name from id -un', 60_000);
  client.send('exit\r');
  await client.expect(/login: $/, 'the login prompt after exit', 90_000);
  await client.finish();
  const who = logField('session started', 'user', user);
  expect(who !== null, `no 'session started ... user=${user}' line of the agent on hvc0`);
  note(`the agent's log: '${tail(who.input.slice(who.index, who.index + 200), 200)}'`);
});

await check('agent-no-secret', async () => {
  const sources = [];
  for (const c of clients) sources.push([`console client ${c.child.pid}`, c.text() + c.stderr()]);
  for (const f of readdirSync(daemon.logDir))
    sources.push([`${daemon.logDir}/${f}`, readText(`${daemon.logDir}/${f}`)]);
  sources.push(['the daemon stderr', daemon.stderr()]);
  for (const [where, text] of sources) {
    for (const [what, secret] of [
      ['the password', password],
      ['the wrong password', wrong],
    ])
      expect(!text.includes(secret), `${what} is in ${where}`);
  }
  // Not vacuous: the log of console 1 is there and holds the dialogue.
  const log1 = readText(`${daemon.logDir}/guest-${guest}-1.log`);
  expect(log1.includes('Login incorrect'), `guest-${guest}-1.log lacks the dialogue`);
  note(`searched ${sources.length} transcripts and logs (${sources.map(([w]) => w).join(', ')})`);
  // Checked free of both passwords just above.
  if (clients.length > 0) note(`console 1 as dom0 saw it: '${tail(clients[0].text(), 500)}'`);
});

await check('agent-debug', async () => {
  expect(agentReady, 'the agent is not running (agent-start)');
  const out = await tool(process.execPath, [cliJs, 'debug', guest, 's', '--timeout', '90'], {
    timeout: 150_000,
  });
  expect(
    new RegExp(`sessions: ${hvc ?? 'hvc\\d+'}`).test(out),
    `no 'sessions: ${hvc ?? 'hvc'}...' in: ${tail(out, 300)}`,
  );
  note(`xencons debug ${guest} s: ${tail(out, 200)}`);
});

// ---- the console goes away; clean-up ---------------------------------------------------------
for (const c of clients) await c.close();
let removal = null;
if (device) {
  const { removeSecondaryConsole } = await import(deviceJs);
  removal = await removeSecondaryConsole(xs, { domid, devid: 1, timeout: 20_000 }).then(
    (r) => (r.clean ? 'closed cleanly' : 'removed without reaching Closed'),
    (err) => `removal failed: ${describeError(err)}`,
  );
  note(`device/console/1 ${removal}`);
}
await check('agent-console-removed', async () => {
  expect(removal !== null && hvc !== null, 'no console to remove (agent-console)');
  expect(!removal.startsWith('removal failed'), removal);
  await waitUntil(
    60_000,
    `the agent did not notice that ${hvc} went away; hvc0 log ends '${tail(hvc0Log(), 300)}'`,
    () => logField('console gone', 'console', hvc),
    500,
  );
});
xs?.close();
note(`daemon stopped: ${await daemon.stop()}`);
note(`agent log on hvc0 (tail): ${tail(hvc0Log(), 600)}`);
rmSync(work, { recursive: true, force: true });
note(`ms: ${runner.laps()}; total ${elapsed()}`);
runner.finish();
