// The console daemon (`xencons daemon`, apps/dom0) and `xencons console` against real Xen, the
// real xenconsoled and the test guest's Linux hvc_xen. Run by dom0-run.sh with the host's node
// binary from the payload, after the checks that read xenconsoled's log (they need it complete).
// Prints one line per check, `PASS name` or `FAIL name: reason`, and `NOTE console: ...` lines.
//
//   node console-checks.mjs --domid N --guest xqguest --nonce NONCE [--only PATTERN]
//
// Checks, in this order (each bounded; every process started here is stopped by its PID):
//   console-pty-mode     xenconsoled running: the daemon (`--primary auto`) sits on the pty
//                        xenconsoled publishes in console/tty; a command typed through
//                        `xencons console` runs in the guest's shell on hvc0 and its output
//                        (computed by the shell) comes back there and lands in the daemon's log
//   console-secondary    `device/console/1` created for the guest with @xencons/device's
//                        createSecondaryConsole (type xencons), served by that same daemon: the
//                        guest's hvc_xen connects it as /dev/hvc1 (vm/checks/guest.sh keeps a
//                        shell there), `xencons list --json` shows console 1 connected, and
//                        `xencons console --num 1` reaches that shell; the device is removed after
//   console-ring-mode    xenconsoled stopped (by the PID in its pid file), then `xl sysrq D h`
//                        so the guest's kernel leaves its SysRq help in the ring: the daemon
//                        with `--primary ring` maps the guest's console page itself from where
//                        xenconsoled left its indices, logs that waiting output, and typed input
//                        reaches the shell on hvc0, whose output comes back and is logged
//   console-xenconsoled-back  xenconsoled started again as dom0's /init starts it: it takes the
//                        ring back from where the daemon left it; a command typed into the pty
//                        it publishes in console/tty gets its answer (later checks need it)
import { execFile, spawnSync } from 'node:child_process';
import {
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { consoleTools, fileHas, tail, waitUntil, xsRead } from './console-lib.mjs';
import { checkRunner, describeError, expect, tool } from './lib.mjs';

const runner = checkRunner({
  options: {
    domid: { type: 'string', default: '' },
    guest: { type: 'string', default: 'xqguest' },
    nonce: { type: 'string', default: 'none' },
    'work-dir': { type: 'string', default: '/run/xq' },
    repo: { type: 'string', default: fileURLToPath(new URL('../repo/', import.meta.url)) },
    'xenconsoled-pid-file': { type: 'string', default: '/run/xenconsoled.pid' },
    'xenconsoled-log-dir': { type: 'string', default: '/var/log/xen/console' },
  },
  noteTag: 'console',
  // A node start is 3-10 s under TCG on a busy host; a check starts two or three.
  timeoutMs: 420_000,
});
const { opts, check, line, note } = runner;
const CHECKS = [
  'console-pty-mode',
  'console-secondary',
  'console-ring-mode',
  'console-xenconsoled-back',
];
if (!runner.anySelected(CHECKS)) process.exit(0);

const cli = `${opts.repo}apps/dom0/dist/cli.js`;
const deviceJs = `${opts.repo}packages/device/dist/index.js`;
const xenstoreJs = `${opts.repo}packages/xenstore/dist/index.js`;
const selectedChecks = CHECKS.filter((n) => runner.selected(n));
const bail = (reason) => {
  for (const name of selectedChecks) line('FAIL', name, reason);
  process.exit(1);
};
if (opts.domid === '') bail('no guest (guest-create failed)');
if (!existsSync(cli)) bail(`xencons is not built (${cli})`);
const domid = Number(opts.domid);
const guest = opts.guest;
const work = `${opts['work-dir']}/console-${process.pid}`;
mkdirSync(work, { recursive: true });
const t0 = performance.now();
const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

const { startDaemon, consoleUp, listOverSocket, typeThroughConsole } = consoleTools({
  runner,
  repo: opts.repo,
  work,
  guest,
  domid,
});

/** The live xenconsoled PID from its pid file (comm checked), or null. */
function xenconsoledPid() {
  let pid;
  try {
    pid = Number.parseInt(readFileSync(opts['xenconsoled-pid-file'], 'utf8'), 10);
  } catch {
    return null;
  }
  if (!Number.isInteger(pid) || pid <= 1) return null;
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'xenconsoled' ? pid : null;
  } catch {
    return null;
  }
}

/** Starts xenconsoled as dom0's /init does (it daemonizes); resolves to its new PID. */
async function startXenconsoled(previous) {
  const r = spawnSync(
    'xenconsoled',
    [
      `--pid-file=${opts['xenconsoled-pid-file']}`,
      '--log=guest',
      `--log-dir=${opts['xenconsoled-log-dir']}`,
    ],
    { encoding: 'utf8', timeout: 30_000 },
  );
  if (r.status !== 0)
    throw new Error(`xenconsoled exited ${r.status ?? r.signal}: ${(r.stderr || '').trim()}`);
  return waitUntil(15_000, 'xenconsoled wrote no live PID to its pid file', () => {
    const pid = xenconsoledPid();
    return pid !== null && pid !== previous ? pid : null;
  });
}

/**
 * Types `command` into the pty named in console/tty (as xenconsole does, raw) until `expected`
 * comes back; re-reads the node while the pty is not there yet.
 */
async function typeThroughPty(command, expected, ms) {
  const end = Date.now() + ms;
  let got = '';
  let lastTty = '';
  while (Date.now() < end) {
    lastTty = await xsRead(`/local/domain/${domid}/console/tty`).catch(() => '');
    let fd = -1;
    try {
      fd = openSync(lastTty, constants.O_RDWR | constants.O_NOCTTY | constants.O_NONBLOCK);
    } catch {
      await sleep(500);
      continue;
    }
    try {
      await new Promise((resolve) =>
        execFile('stty', ['-F', lastTty, 'raw', '-echo'], { timeout: 10_000 }, () => resolve()),
      );
      const buf = Buffer.alloc(4096);
      const until = Math.min(end, Date.now() + 20_000);
      writeSync(fd, `${command}\r`);
      while (Date.now() < until) {
        let n = 0;
        try {
          n = readSync(fd, buf, 0, buf.length, null);
        } catch (err) {
          if (err.code !== 'EAGAIN') break; // EIO: its master went away
        }
        if (n > 0) {
          got += buf.toString('latin1', 0, n);
          if (got.includes(expected)) return lastTty;
        } else await sleep(50);
      }
    } finally {
      closeSync(fd);
    }
  }
  throw new Error(`no '${expected}' through console/tty ('${lastTty}'): read '${tail(got)}'`);
}

// ---- xenconsoled running: the daemon sits on its pty ---------------------------------------
let daemonA = null;
const xenconsoledBefore = xenconsoledPid();
note(`xenconsoled pid ${xenconsoledBefore ?? 'none'}, guest ${guest} domain ${domid}`);

if (runner.anySelected(['console-pty-mode', 'console-secondary'])) {
  try {
    daemonA = await startDaemon('pty', []);
  } catch (err) {
    for (const n of ['console-pty-mode', 'console-secondary'])
      if (runner.selected(n)) line('FAIL', n, describeError(err));
  }
}

if (daemonA) {
  await check('console-pty-mode', async () => {
    expect(xenconsoledBefore !== null, 'xenconsoled is not running (see the xenconsoled check)');
    const tty = await xsRead(`/local/domain/${domid}/console/tty`);
    const up = await consoleUp(daemonA, 'pty|grant|frame');
    expect(up.includes(`via pty ${tty}`), `the daemon is not on xenconsoled's pty ${tty}: '${up}'`);
    const { output, tries } = await typeThroughConsole(
      daemonA.socket,
      0,
      'echo XQ-CON-PTY-$((6*7))',
      'XQ-CON-PTY-42',
    );
    note(`pty mode: '${up}'; answer after ${tries} command(s), output '${tail(output, 80)}'`);
    await fileHas(daemonA.log, 'XQ-CON-PTY-42', 20_000);
  });

  await check('console-secondary', async () => {
    if (!existsSync(deviceJs) || !existsSync(xenstoreJs))
      throw new Error('@xencons/device or @xencons/xenstore is not built');
    const { createSecondaryConsole, removeSecondaryConsole } = await import(deviceJs);
    const { openXenstore } = await import(xenstoreJs);
    const xs = await openXenstore();
    try {
      const created = await createSecondaryConsole(xs, { domid, devid: 1 });
      note(`created ${created.frontendPath} and ${created.backendPath}`);
      const front = created.frontendPath;
      try {
        // The guest's hvc_xen answers with ring-ref, port and Initialised; the daemon Connected.
        await waitUntil(
          120_000,
          `the guest's frontend did not connect ${front}`,
          async () => {
            const [fe, be] = await Promise.all([
              xsRead(`${front}/state`).catch(() => '?'),
              xsRead(`${created.backendPath}/state`).catch(() => '?'),
            ]);
            return fe === '4' && be === '4';
          },
          500,
        );
        const ringRef = await xsRead(`${front}/ring-ref`).catch(() => '?');
        const port = await xsRead(`${front}/port`).catch(() => '?');
        const handshake = `handshake done (frontend and backend Connected, ring-ref ${ringRef}, port ${port})`;
        // Inside the guest: its loop (vm/checks/guest.sh) opened /dev/hvc1 and said so on hvc0,
        // which the daemon logs (it sits on hvc0 through xenconsoled's pty).
        const marker = `XQ-GUEST-HVC1 nonce=${opts.nonce}`;
        await fileHas(daemonA.log, marker, 30_000).catch((err) => {
          throw new Error(
            `${handshake}, but the guest did not open /dev/hvc1: ${describeError(err)}`,
          );
        });
        let last = null;
        await waitUntil(
          30_000,
          'not connected',
          async () => {
            const list = await listOverSocket(daemonA.socket).catch(() => []);
            last = list.find((c) => c.domid === domid && c.num === 1) ?? null;
            return last?.state === 'connected';
          },
          500,
        ).catch(async () => {
          const tty = await xsRead(`${front}/tty`).catch(() => '?');
          throw new Error(
            `${handshake} and the guest opened /dev/hvc1, but the daemon does not serve console 1 within 30 s: its list says ${JSON.stringify(last)}, ${front}/tty is '${tty}'; ${daemonA.why()}`,
          );
        });
        // The CLI's own listing (one node start).
        const listed = await tool(
          process.execPath,
          [cli, 'list', '--json', '--socket', daemonA.socket],
          { timeout: 60_000 },
        );
        const one = JSON.parse(listed).consoles.find((c) => c.domid === domid && c.num === 1);
        expect(
          one?.state === 'connected' && /^\/dev\/pts\/\d+$/.test(one.tty ?? ''),
          `xencons list --json: console 1 is ${JSON.stringify(one)}`,
        );
        const { output, tries } = await typeThroughConsole(
          daemonA.socket,
          1,
          'echo XQ-CON-ON-$(basename $(tty))-$((6*7))',
          'XQ-CON-ON-hvc1-42',
        );
        note(
          `console 1: ${handshake}, tty ${one.tty}; answer after ${tries} command(s), output '${tail(output, 80)}'`,
        );
      } finally {
        const removed = await removeSecondaryConsole(xs, { domid, devid: 1, timeout: 20_000 }).then(
          (r) => (r.clean ? 'closed cleanly' : 'removed without reaching Closed'),
          (err) => `removal failed: ${describeError(err)}`,
        );
        note(`device/console/1 ${removed}`);
      }
    } finally {
      xs.close();
    }
  });
  note(`pty-mode daemon stopped: ${await daemonA.stop()}`);
  if (runner.anySelected(['console-pty-mode', 'console-secondary']))
    note(`pty-mode daemon stderr: ${tail(daemonA.stderr(), 400)}`);
}

// ---- xenconsoled stopped: the daemon maps the ring ------------------------------------------
if (runner.anySelected(['console-ring-mode', 'console-xenconsoled-back'])) {
  let stoppedPid = null;
  await check('console-ring-mode', async () => {
    const pid = xenconsoledPid();
    expect(pid !== null, `no live xenconsoled in ${opts['xenconsoled-pid-file']}`);
    process.kill(pid, 'SIGTERM');
    stoppedPid = pid;
    await waitUntil(15_000, `xenconsoled (pid ${pid}) did not exit on SIGTERM`, () => {
      return (
        !existsSync(`/proc/${pid}`) ||
        /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))
      );
    }).catch((err) => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
      note(`${describeError(err)}; sent SIGKILL`);
    });
    const ring = await tool('xenstore-ls', [`/local/domain/${domid}/console`]).catch(() => '');
    note(`xenconsoled ${pid} stopped; console nodes: ${ring.replace(/\s+/g, ' ').slice(0, 200)}`);
    // Output that waits in the ring while no backend runs: the guest kernel's SysRq help (a few
    // hundred bytes, well under the 2048-byte ring), asked for through control/sysrq.
    await tool('xl', ['sysrq', String(domid), 'h'], { timeout: 60_000 });
    await sleep(2_000);
    let daemonB = null;
    try {
      daemonB = await startDaemon('ring', ['--primary', 'ring']);
      const up = await consoleUp(daemonB, 'grant|frame');
      await fileHas(daemonB.log, 'HELP :', 30_000).catch((err) => {
        throw new Error(
          `the SysRq help the guest wrote while no backend ran did not reach the daemon's log: ${describeError(err)}`,
        );
      });
      const tty = await xsRead(`/local/domain/${domid}/console/tty`).catch(() => '');
      note(`ring mode: '${up}'; console/tty now ${tty}`);
      const { output, tries } = await typeThroughConsole(
        daemonB.socket,
        0,
        'echo XQ-CON-RING-$((6*7))',
        'XQ-CON-RING-42',
      );
      note(`ring mode: answer after ${tries} command(s), output '${tail(output, 80)}'`);
      await fileHas(daemonB.log, 'XQ-CON-RING-42', 20_000);
    } finally {
      if (daemonB) {
        note(`ring-mode daemon stopped: ${await daemonB.stop()}`);
        note(`ring-mode daemon stderr: ${tail(daemonB.stderr(), 400)}`);
      }
    }
  });

  // Whatever happened above, xenconsoled runs again for the checks after these.
  let restart = null;
  if (xenconsoledPid() === null) {
    restart = startXenconsoled(stoppedPid).then(
      (pid) => ({ pid }),
      (err) => ({ error: describeError(err) }),
    );
  }
  await check('console-xenconsoled-back', async () => {
    const r = restart ? await restart : { pid: xenconsoledPid() };
    if (r.error) throw new Error(`restarting xenconsoled: ${r.error}`);
    expect(r.pid !== null, 'xenconsoled is not running');
    const tty = await typeThroughPty('echo XQ-CON-BACK-$((6*7))', 'XQ-CON-BACK-42', 90_000);
    note(`xenconsoled back as pid ${r.pid}, its pty ${tty}`);
  });
  if (restart && !runner.selected('console-xenconsoled-back')) {
    const r = await restart;
    if (r.error) line('FAIL', 'console-ring-mode', `restarting xenconsoled: ${r.error}`);
  }
}

rmSync(work, { recursive: true, force: true });
note(`ms: ${runner.laps()}; total ${elapsed()}`);
runner.finish();
