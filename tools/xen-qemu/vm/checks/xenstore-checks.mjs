// The xenstore client (@xencons/xenstore) against the real xenstored of this boot (cxenstored or
// oxenstored), over both transports: the unix socket (/run/xenstored/socket) and /dev/xen/xenbus.
// Run by dom0-run.sh with the host's node binary from the payload, once per boot.
// Prints one line per check: `PASS name` or `FAIL name: reason`, and `NOTE xs: ...` lines for
// behaviour worth recording that is not a failure (dom0-run.sh echoes them to the console).
//
//   node xenstore-checks.mjs --domid N --xenstored c|ocaml [--only PATTERN]
//
// Checks (each bounded), for T in socket and xenbus:
//   xs-T-rw         write / read / rm under a scratch path; a value with NUL bytes round trips
//   xs-T-dir-perms  directory(/local/domain) equals xenstore-list's; getPerms of the guest's
//                   /local/domain/<domid> equals what `xenstore-ls -p` prints for it
//   xs-T-watch      the initial event, then an event for a write by `xenstore-write`; UNWATCH
//   xs-T-tx         a transaction meets a conflicting write from a second client: retried once,
//                   the final value is the second client's plus one
//   xs-domain       (socket) getDomainPath(0), isDomainIntroduced(guest) = true
//
// Then our daemon (@xencons/xenstored, `xencons-xenstored` from the share) is started in dom0 on
// its own socket, and the same raw requests go to both daemons, one area per check
// (xenstore-compare.mjs holds the requests and the rules):
//   xs-ours         our daemon starts and answers
//   xs-cmp-A        for A in rw, dir, paths, perms, watch, tx, quota, misc: the two transcripts
//                   (replies, errors, watch events, connection drops, memory accounting) compared
// Each difference is printed as a `NOTE xs: [impl] cmp ...` line (packages/xenstored/README.md
// lists them); a check fails on a difference its step's mark does not allow for this daemon.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { checkRunner, describeError, expect, tool, within } from './lib.mjs';

const runner = checkRunner({
  options: {
    domid: { type: 'string', default: '' },
    xenstored: { type: 'string', default: '' },
    // For a run outside the VM (e.g. against cxenstored started through the LD_PRELOAD shim):
    'real-socket': { type: 'string', default: '/run/xenstored/socket' },
    'work-dir': { type: 'string', default: '/run/xq' },
    repo: { type: 'string', default: fileURLToPath(new URL('../repo/', import.meta.url)) },
  },
  noteTag: 'xs',
  // The comparisons wait up to 5 s for each answer a daemon never gives (oxenstored has a few),
  // and dom0 under QEMU on a loaded host is slow.
  timeoutMs: 180_000,
});
const { opts, selected, check, line, lap } = runner;
const note = (text) => runner.note(`[${opts.xenstored}] ${text}`);
const TRANSPORTS = ['socket', 'xenbus'];
const KINDS = ['rw', 'dir-perms', 'watch', 'tx'];
const AREAS = ['rw', 'dir', 'paths', 'perms', 'watch', 'tx', 'quota', 'misc'];
const CMP = ['xs-ours', ...AREAS.map((a) => `xs-cmp-${a}`)];
const ALL = [...TRANSPORTS.flatMap((t) => KINDS.map((k) => `xs-${t}-${k}`)), 'xs-domain', ...CMP];
if (!runner.anySelected(ALL)) process.exit(0);
const t0 = performance.now();

// Our daemon, started first: node takes a while to start under QEMU, overlapping the checks.
const OURS_SOCKET = `${opts['work-dir']}/xencons-xenstored-${process.pid}.sock`;
const oursCli = `${opts.repo}/packages/xenstored/dist/cli.js`;
let ours = null;
if (runner.anySelected(CMP) && existsSync(oursCli)) {
  const child = spawn(
    process.execPath,
    ['--max-semi-space-size=2', oursCli, '--socket', OURS_SOCKET],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, XENCONS_LOG: 'info' } },
  );
  let stderr = '';
  const ready = new Promise((resolve, reject) => {
    child.stderr.on('data', (d) => {
      stderr += d.toString();
      if (stderr.includes('ready on')) resolve();
    });
    child.once('exit', (code, sig) =>
      reject(new Error(`xencons-xenstored exited (${code ?? sig}): ${stderr.slice(-300)}`)),
    );
  });
  ready.catch(() => {});
  ours = { child, ready, stderr: () => stderr };
}

// The C tools' view of /local/domain, the reference for the dir-perms checks of both transports.
// Started now so that their forks overlap with loading the client.
const cliListing = ALL.filter((n) => n.endsWith('dir-perms')).some(selected)
  ? Promise.all([
      tool('xenstore-list', ['/local/domain']),
      tool('xenstore-ls', ['-p', '/local/domain']),
    ])
  : null;
cliListing?.catch(() => {}); // awaited (and reported) by the checks

/** The next event of `watch`, or an error after `ms`. */
async function nextEvent(watch, ms, what) {
  const r = await within(ms, `${what}: watch event`, watch.next());
  if (r.done) throw new Error(`${what}: the watch ended`);
  return r.value;
}

// ---- the client -----------------------------------------------------------------------------
const xsJs = `${opts.repo}/packages/xenstore/dist/index.js`;
if (!existsSync(xsJs)) {
  line('FAIL', 'xs', '@xencons/xenstore is not built (packages/xenstore/dist)');
  process.exit(1);
}
const tImport = performance.now();
const xsMod = await import(xsJs);
lap('import', tImport);
const { openXenstore, socketTransport, xenbusTransport, formatAcl, XsType } = xsMod;

const domid = opts.domid;
const SCRATCH = `/local/domain/0/data/xq-xs-${process.pid}`;
const open = (t) =>
  openXenstore({
    transport: t === 'socket' ? socketTransport('/run/xenstored/socket') : xenbusTransport(),
    timeout: 10_000,
    reconnect: false,
  });

for (const t of TRANSPORTS) {
  if (!KINDS.some((k) => selected(`xs-${t}-${k}`)) && !(t === 'socket' && selected('xs-domain')))
    continue;
  let xs;
  const tOpen = performance.now();
  try {
    xs = await open(t);
    lap(`open-${t}`, tOpen);
  } catch (err) {
    for (const k of KINDS)
      if (selected(`xs-${t}-${k}`)) line('FAIL', `xs-${t}-${k}`, `connect: ${describeError(err)}`);
    if (t === 'socket' && selected('xs-domain'))
      line('FAIL', 'xs-domain', `connect: ${describeError(err)}`);
    continue;
  }
  const base = `${SCRATCH}/${t}`;

  await check(`xs-${t}-rw`, async () => {
    const path = `${base}/rw/value`;
    await xs.write(path, 'hello');
    expect((await xs.readString(path)) === 'hello', 'read after write differs');
    const withNul = Uint8Array.from([0x61, 0x00, 0x62, 0x00, 0x00, 0xff, 0x63]);
    await xs.write(path, withNul);
    const back = await xs.read(path);
    expect(
      Buffer.from(back).equals(Buffer.from(withNul)),
      `NUL value came back as ${Buffer.from(back).toString('hex')}`,
    );
    // An empty value, and the C tool's view of a plain one.
    await xs.write(`${base}/rw/empty`, '');
    expect((await xs.read(`${base}/rw/empty`)).length === 0, 'empty value not empty');
    await xs.write(`${base}/rw/plain`, 'from-client');
    const cli = (await tool('xenstore-read', [`${base}/rw/plain`])).trim();
    expect(cli === 'from-client', `xenstore-read saw '${cli}'`);
    const children = (await xs.directory(`${base}/rw`)).sort().join(',');
    expect(children === 'empty,plain,value', `directory gave ${children}`);
    await xs.rm(`${base}/rw`);
    expect(!(await xs.exists(path)), 'node still there after rm');
    expect(!(await xs.exists(`${base}/rw`)), 'parent still there after rm');
    expect((await xs.readStringOptional(path)) === undefined, 'readStringOptional not undefined');
    try {
      await xs.read(path);
      throw new Error('read of a removed node did not reject');
    } catch (err) {
      expect(err.code === 'ENOENT', `read of a removed node: ${describeError(err)}`);
    }
  });

  await check(`xs-${t}-dir-perms`, async () => {
    const dir = (await xs.directory('/local/domain')).sort();
    const [list, ls] = await cliListing;
    const cliDir = list.split('\n').filter(Boolean);
    expect(
      dir.join(',') === cliDir.sort().join(','),
      `directory gave ${dir.join(',')}, xenstore-list ${cliDir.join(',')}`,
    );
    expect(dir.includes('0'), `no 0 in /local/domain (${dir.join(',')})`);
    const target = domid || '0';
    if (!domid) note('no guest: dir-perms compared /local/domain/0');
    expect(dir.includes(target), `no ${target} in /local/domain (${dir.join(',')})`);
    const perms = formatAcl(await xs.getPerms(`/local/domain/${target}`)).join(',');
    const re = new RegExp(`^${target} = .*\\(([^()]*)\\)\\s*$`);
    const row = ls.split('\n').find((l) => re.test(l));
    expect(row !== undefined, `no row for ${target} in xenstore-ls -p /local/domain`);
    const cliPerms = re.exec(row)[1];
    expect(perms === cliPerms, `getPerms gave ${perms}, xenstore-ls -p ${cliPerms}`);
    // setPerms round trip on a scratch node.
    const p = `${base}/perms`;
    await xs.write(p, 'x');
    await xs.setPerms(p, ['n0', `r${target}`]);
    const back = formatAcl(await xs.getPerms(p)).join(',');
    expect(back === `n0,r${target}`, `setPerms n0,r${target} read back as ${back}`);
    await xs.rm(p);
  });

  await check(`xs-${t}-watch`, async () => {
    const path = `${base}/watch`;
    await xs.write(path, '');
    const watch = await xs.watch(path);
    try {
      const first = await nextEvent(watch, 5000, 'initial event');
      expect(first.path === path, `initial event for ${first.path}`);
      await tool('xenstore-write', [`${path}/child`, 'v']);
      const ev = await nextEvent(watch, 5000, 'after xenstore-write');
      expect(ev.path === `${path}/child`, `event for ${ev.path}, wanted ${path}/child`);
      expect(ev.token === watch.token, `event token ${ev.token} is not ${watch.token}`);
    } finally {
      await watch.close();
    }
    // After UNWATCH, a write must not reach the (closed) watch, and the client still works.
    await xs.write(`${path}/child`, 'w');
    expect(watch.queued === 0, 'events queued after close');
    await xs.rm(path);
    // UNWATCH of a watch this connection never registered: the daemons may differ; recorded.
    try {
      await xs.request(XsType.UNWATCH, [path, `xq-unknown-${t}`]);
      // Through /dev/xen/xenbus the Linux frontend answers UNWATCH itself (OK) for a watch it
      // does not know, without asking the daemon.
      note(`${t}: UNWATCH of an unknown watch answers OK`);
    } catch (err) {
      note(`${t}: UNWATCH of an unknown watch answers ${err.code ?? describeError(err)}`);
    }
    expect((await xs.getDomainPath(0)) === '/local/domain/0', 'connection unusable after UNWATCH');
  });

  await check(`xs-${t}-tx`, async () => {
    const path = `${base}/tx/counter`;
    await xs.write(path, '10');
    const other = await open(t);
    let runs = 0;
    try {
      const result = await xs.transaction(
        async (tx) => {
          runs++;
          const n = Number(await tx.readString(path));
          if (runs === 1) await other.write(path, '100'); // the conflicting write, outside tx
          await tx.write(path, String(n + 1));
          return n + 1;
        },
        { retries: 5 },
      );
      const final = await xs.readString(path);
      expect(runs === 2, `the transaction ran ${runs} times (final ${final})`);
      expect(result === 101 && final === '101', `result ${result}, final value ${final}`);
      // An aborted raw transaction leaves nothing behind.
      const tx = await xs.startTransaction();
      await tx.write(`${base}/tx/aborted`, 'x');
      await tx.abort();
      expect(!(await xs.exists(`${base}/tx/aborted`)), 'aborted write is visible');
    } finally {
      await other.close();
    }
    await xs.rm(`${base}/tx`);
  });

  if (t === 'socket')
    await check('xs-domain', async () => {
      const p0 = await xs.getDomainPath(0);
      expect(p0 === '/local/domain/0', `getDomainPath(0) = ${p0}`);
      expect(domid !== '', 'no guest domid given');
      const pg = await xs.getDomainPath(Number(domid));
      expect(pg === `/local/domain/${domid}`, `getDomainPath(${domid}) = ${pg}`);
      const intro = await xs.isDomainIntroduced(Number(domid));
      expect(intro === true, `isDomainIntroduced(${domid}) = ${intro}`);
      // A domid that does not exist: recorded, not checked (the daemons may differ).
      try {
        note(`isDomainIntroduced(1000) = ${await xs.isDomainIntroduced(1000)}`);
      } catch (err) {
        note(`isDomainIntroduced(1000) rejects ${err.code ?? describeError(err)}`);
      }
    });

  const tClose = performance.now();
  try {
    await xs.rm(base);
  } catch {}
  await xs.close();
  lap(`close-${t}`, tClose);
}
try {
  const xs = await open('socket');
  await xs.rm(SCRATCH);
  await xs.close();
} catch {}

const REAL_SOCKET = opts['real-socket'];
const impl = opts.xenstored === 'c' ? 'c' : 'ocaml';
if (runner.anySelected(CMP)) {
  const { compareArea } = await import('./xenstore-compare.mjs');
  let oursUp = false;
  await check('xs-ours', async () => {
    expect(ours !== null, `our daemon is not built (${oursCli})`);
    await within(60_000, 'xencons-xenstored ready', ours.ready);
    const xs = await openXenstore({
      transport: socketTransport(OURS_SOCKET),
      timeout: 10_000,
      reconnect: false,
    });
    const p = await xs.getDomainPath(0);
    await xs.close();
    expect(p === '/local/domain/0', `getDomainPath(0) answered ${p}`);
    oursUp = true;
  });
  for (const area of AREAS) {
    const name = `xs-cmp-${area}`;
    if (!selected(name)) continue;
    if (!oursUp) {
      line('FAIL', name, 'our daemon did not start');
      continue;
    }
    await check(name, async () => {
      const r = await compareArea(area, {
        codec: xsMod,
        realSocket: REAL_SOCKET,
        oursSocket: OURS_SOCKET,
        impl,
        domid,
      });
      for (const d of r.differences) note(`cmp ${area} ${d}`);
      note(
        `cmp ${area}: ${r.steps} steps, ${r.differences.length} differences, ${r.required.length} not allowed`,
      );
      expect(r.required.length === 0, r.required.join('; '));
    });
  }
}

if (ours !== null && ours.child.exitCode === null) ours.child.kill('SIGTERM');

lap('script', t0);
note(`ms: ${runner.laps()} (node up ${Math.round(t0)} ms before the script)`);
// A parked xenbus read must not keep the process alive.
runner.finish();
