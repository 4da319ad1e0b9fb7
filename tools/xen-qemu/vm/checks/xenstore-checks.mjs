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
// its own socket, and the same raw requests go to both daemons, one area per check:
//   xs-ours         our daemon starts and answers
//   xs-cmp-A        for A in rw, dir, paths, perms, watch, tx, misc: the two transcripts (replies,
//                   errors, watch events, connection drops) are compared step by step
// Each step is marked: `both` must match cxenstored and oxenstored, `c` must match cxenstored
// (a difference from oxenstored is recorded), `env` is recorded only (our daemon has no
// hypervisor: it knows no domains but the ones it was told about). Recorded differences are
// `NOTE xs: [impl] cmp ...` lines; packages/xenstored/README.md lists them.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
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
});
const { opts, selected, check, line, lap } = runner;
const note = (text) => runner.note(`[${opts.xenstored}] ${text}`);
const TRANSPORTS = ['socket', 'xenbus'];
const KINDS = ['rw', 'dir-perms', 'watch', 'tx'];
const AREAS = ['rw', 'dir', 'paths', 'perms', 'watch', 'tx', 'misc'];
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

// ---- our daemon next to the real one ---------------------------------------------------------
const ERROR = 16;
const WATCH_EVENT = 15;

/** A bare connection: raw frames out, replies matched by req_id, watch events collected. */
class Raw {
  static open(path) {
    return new Promise((resolve, reject) => {
      const sock = connect(path);
      sock.once('connect', () => resolve(new Raw(sock)));
      sock.once('error', reject);
    });
  }

  constructor(sock) {
    this.sock = sock;
    this.reqId = 1;
    this.pending = new Map();
    this.events = [];
    this.closed = false;
    const decoder = new xsMod.XsDecoder({ peer: 'daemon' });
    sock.on('data', (chunk) => {
      try {
        decoder.feed(chunk, (m) => {
          const text = Buffer.from(m.payload).toString('latin1');
          if (m.type === WATCH_EVENT) {
            this.events.push(text.split('\0').slice(0, 2).join(' '));
            return;
          }
          this.pending.get(m.reqId)?.({ type: m.type, text });
          this.pending.delete(m.reqId);
        });
      } catch (err) {
        this.events.push(`undecodable: ${describeError(err)}`);
      }
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      this.closed = true;
      for (const done of this.pending.values()) done({ type: -1, text: 'CLOSED' });
      this.pending.clear();
    });
  }

  frame(type, payload, txId = 0, len = undefined) {
    const body = Buffer.from(payload, 'latin1');
    const head = Buffer.alloc(16);
    head.writeUInt32LE(type >>> 0, 0);
    head.writeUInt32LE(this.reqId, 4);
    head.writeUInt32LE(txId >>> 0, 8);
    head.writeUInt32LE(len ?? body.length, 12);
    return Buffer.concat([head, body]);
  }

  /** Sends one request; resolves with its reply, `CLOSED`, or `TIMEOUT` after 5 s. */
  request(type, payload, txId = 0, len = undefined) {
    if (this.closed) return Promise.resolve({ type: -1, text: 'CLOSED' });
    const id = this.reqId;
    const frame = this.frame(type, payload, txId, len);
    this.reqId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve({ type: -1, text: 'TIMEOUT' });
      }, 5000);
      this.pending.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.sock.write(frame);
    });
  }

  /** Waits until every event queued before now has arrived, and returns them. */
  async takeEvents() {
    await this.request(xsMod.XsType.GET_DOMAIN_PATH, '0\0');
    return this.events.splice(0);
  }

  close() {
    this.sock.destroy();
  }
}

/**
 * Runs `scenario` on a daemon and returns its transcript: step name → { level, text }. `q` sends
 * a request and records the reply; `ev` records the watch events a connection has received.
 */
async function transcript(socket, R, scenario) {
  const steps = new Map();
  const conns = [];
  const norm = (text) => text.split(R).join('$R');
  const record = (name, level, text) => {
    if (steps.has(name)) throw new Error(`step ${name} recorded twice`);
    steps.set(name, { level, text: norm(text) });
  };
  const ctx = {
    R,
    async conn() {
      const c = await Raw.open(socket);
      conns.push(c);
      return c;
    },
    /** Sends a request on `c` and records its reply under `name`. */
    async q(name, level, c, type, payload, { tx = 0, len, show } = {}) {
      const r = await c.request(type, payload, tx, len);
      let text;
      if (r.type === -1) text = r.text;
      else if (r.type === ERROR) text = `ERR ${r.text.replace(/\0$/, '')}`;
      else if (r.type !== type) text = `type ${r.type} ${JSON.stringify(r.text)}`;
      else text = JSON.stringify(show ? show(r.text) : r.text);
      record(name, level, text);
      return r;
    },
    /** Records the watch events `c` has received so far. */
    async ev(name, level, c) {
      record(name, level, `[${(await c.takeEvents()).join(', ')}]`);
    },
    note: (name, level, text) => record(name, level, text),
  };
  try {
    await scenario(ctx);
  } finally {
    for (const c of conns) c.close();
  }
  return steps;
}

const T = () => xsMod.XsType;
/** The transaction id of a TRANSACTION_START reply. */
const txOf = (r) => Number.parseInt(r.text, 10) || 0;
const anyTx = () => '<tx id>';

/** The comparison scenarios, one per area. Both daemons run them as dom0 over their socket. */
const SCENARIOS = {
  async rw({ R, conn, q }) {
    const { READ, WRITE, MKDIR, RM } = T();
    const a = await conn();
    await q('write', 'both', a, WRITE, `${R}/a\0hello`);
    await q('read', 'both', a, READ, `${R}/a\0`);
    await q('read missing', 'both', a, READ, `${R}/nope\0`);
    await q('read below missing', 'both', a, READ, `${R}/nope/deeper\0`);
    await q('write NULs', 'both', a, WRITE, `${R}/bin\0a\0b\0\0\xff`);
    await q('read NULs', 'both', a, READ, `${R}/bin\0`);
    await q('write empty', 'both', a, WRITE, `${R}/empty\0`);
    await q('read empty', 'both', a, READ, `${R}/empty\0`);
    await q('mkdir', 'both', a, MKDIR, `${R}/d\0`);
    await q('mkdir again', 'both', a, MKDIR, `${R}/d\0`);
    await q('mkdir deep', 'both', a, MKDIR, `${R}/d/e/f\0`);
    await q('read created parent', 'both', a, READ, `${R}/d/e\0`);
    await q('write over a parent', 'both', a, WRITE, `${R}/d\0value`);
    await q('read a parent with a value', 'both', a, READ, `${R}/d\0`);
    await q('write without NUL', 'c', a, WRITE, `${R}/a`);
    await q('read two args', 'c', a, READ, `${R}/a\0x\0`);
    await q('read no NUL', 'c', a, READ, `${R}/a`);
    await q('read empty payload', 'c', a, READ, '');
    await q('directory two args', 'c', a, T().DIRECTORY, `${R}/a\0x\0`);
    await q('get perms two args', 'c', a, T().GET_PERMS, `${R}/a\0x\0`);
    await q('rm two args', 'c', a, RM, `${R}/a\0x\0`);
    await q('mkdir two args', 'c', a, MKDIR, `${R}/m\0x\0`);
    await q('read after mkdir two args', 'c', a, READ, `${R}/m\0`);
    await q('rm', 'both', a, RM, `${R}/d/e\0`);
    await q('read removed child', 'both', a, READ, `${R}/d/e/f\0`);
    await q('rm again (parent exists)', 'both', a, RM, `${R}/d/e\0`);
    await q('rm below missing', 'both', a, RM, `${R}/zz/yy\0`);
    await q('write relative', 'both', a, WRITE, `data/xq-rel-${process.pid}\0rel`);
    await q(
      'read relative as absolute',
      'both',
      a,
      READ,
      `/local/domain/0/data/xq-rel-${process.pid}\0`,
    );
    await q('rm relative', 'both', a, RM, `data/xq-rel-${process.pid}\0`);
    await q('write 4000 bytes', 'both', a, WRITE, `${R}/big\0${'v'.repeat(4000)}`);
    await q('read 4000 bytes', 'both', a, READ, `${R}/big\0`, { show: (t) => `${t.length} bytes` });
  },

  async dir({ R, conn, q }) {
    const { DIRECTORY, DIRECTORY_PART, WRITE, MKDIR } = T();
    const a = await conn();
    for (const name of ['zeta', 'alpha', 'mid', 'Beta', '9', '_u']) {
      await q(`create ${name}`, 'both', a, WRITE, `${R}/o/${name}\0`);
    }
    await q('directory order', 'c', a, DIRECTORY, `${R}/o\0`);
    await q('directory sorted', 'both', a, DIRECTORY, `${R}/o\0`, {
      show: (t) => t.split('\0').filter(Boolean).sort().join(','),
    });
    await q('directory of a leaf', 'both', a, DIRECTORY, `${R}/o/mid\0`);
    await q('directory missing', 'both', a, DIRECTORY, `${R}/nope\0`);
    const gen = (t) => t.replace(/^-?\d+\0/, '<gen>\0');
    await q('directory_part 0', 'c', a, DIRECTORY_PART, `${R}/o\0${0}\0`, { show: gen });
    await q('directory_part 6', 'c', a, DIRECTORY_PART, `${R}/o\0${6}\0`, { show: gen });
    await q('directory_part past end', 'c', a, DIRECTORY_PART, `${R}/o\0${999}\0`, { show: gen });
    await q('directory_part one arg', 'c', a, DIRECTORY_PART, `${R}/o\0`);
    // Over 4096 bytes of names: DIRECTORY is E2BIG; DIRECTORY_PART pages through it.
    const names = [];
    for (let i = 0; i < 300; i++) names.push(`child-number-${String(i).padStart(4, '0')}`);
    for (const n of names) await a.request(MKDIR, `${R}/big/${n}\0`);
    await q('directory over 4096 bytes', 'both', a, DIRECTORY, `${R}/big\0`);
    let all = '';
    let pages = 0;
    for (let off = 0; pages < 10; pages++) {
      const r = await a.request(DIRECTORY_PART, `${R}/big\0${off}\0`);
      if (r.type !== DIRECTORY_PART) {
        all = `ERR ${r.text.replace(/\0$/, '')}`;
        break;
      }
      const body = r.text.slice(r.text.indexOf('\0') + 1);
      all += body;
      off += body.length;
      if (body.endsWith('\0\0') || body.length <= 1) break;
    }
    const listed = all.split('\0').filter(Boolean);
    const q2 = (name, level, text) =>
      q(name, level, a, T().GET_DOMAIN_PATH, '0\0', { show: () => text });
    await q2('directory_part pages', 'c', `${pages + 1} pages`);
    await q2(
      'directory_part lists every child in order',
      'c',
      listed.join(',') === names.join(',') ? 'yes' : `no: ${listed.length} names`,
    );
  },

  async paths({ R, conn, q }) {
    const { READ, WRITE } = T();
    const a = await conn();
    await q('setup', 'both', a, WRITE, `${R}/a\0x`);
    for (const [name, path] of [
      ['trailing slash', `${R}/a/`],
      ['double slash', `${R}//a`],
      ['space', `${R}/a b`],
      ['empty', ''],
      ['relative empty', ''],
      ['at sign node', `${R}/@x`],
      ['special name', '@introduceDomain'],
      ['non-ASCII', `${R}/\xe9`],
      ['dot', `${R}/a.b`],
      ['colon', `${R}/a:b`],
    ]) {
      await q(`read ${name}`, 'c', a, READ, `${path}\0`);
    }
    await q('write 1000-byte path', 'c', a, WRITE, `${R}/${'p'.repeat(1000)}\0`);
    await q('write 2100-byte path', 'c', a, WRITE, `${R}/${'p'.repeat(2100)}\0`);
    await q('write 3100-byte path', 'both', a, WRITE, `/${'p'.repeat(3100)}\0`);
    await q(
      'write 2048 below a domain home',
      'c',
      a,
      WRITE,
      `/local/domain/0/data/${'h'.repeat(2048 - 5)}\0`,
    );
  },

  async perms({ R, conn, q }) {
    const { GET_PERMS, SET_PERMS, WRITE } = T();
    const a = await conn();
    const g = domid || '0';
    await q('setup', 'both', a, WRITE, `${R}/p\0x`);
    await q('default perms', 'both', a, GET_PERMS, `${R}/p\0`);
    await q('set owner + reader', 'both', a, SET_PERMS, `${R}/p\0n0\0r${g}\0`);
    await q('get owner + reader', 'both', a, GET_PERMS, `${R}/p\0`);
    await q('set all letters', 'both', a, SET_PERMS, `${R}/p\0b0\0w${g}\0n${g}\0r${g}\0`);
    await q('get all letters', 'both', a, GET_PERMS, `${R}/p\0`);
    await q('child inherits', 'both', a, WRITE, `${R}/p/c\0`);
    await q('get inherited', 'both', a, GET_PERMS, `${R}/p/c\0`);
    await q('set hex id', 'c', a, SET_PERMS, `${R}/p\0r0x0\0`);
    await q('get hex id', 'c', a, GET_PERMS, `${R}/p\0`);
    await q('set bad letter', 'c', a, SET_PERMS, `${R}/p\0x0\0`);
    await q('set no id', 'c', a, SET_PERMS, `${R}/p\0r\0`);
    await q('set none', 'c', a, SET_PERMS, `${R}/p\0`);
    await q('set on missing', 'both', a, SET_PERMS, `${R}/nope\0n0\0`);
    await q('set unknown domain', 'env', a, SET_PERMS, `${R}/p\0n0\0r1000\0`);
    await q('get unknown domain', 'env', a, GET_PERMS, `${R}/p\0`);
    await q('set unknown owner', 'env', a, SET_PERMS, `${R}/p\0n1000\0`);
    await q('get perms of missing', 'both', a, GET_PERMS, `${R}/nope\0`);
  },

  async watch({ R, conn, q, ev }) {
    const { WATCH, UNWATCH, WRITE, RM, MKDIR, SET_PERMS, RESET_WATCHES } = T();
    const a = await conn();
    const w = await conn();
    const rel = `data/xq-w-${process.pid}`;
    await q('setup', 'both', a, WRITE, `${R}/w/x/deep\0`);
    await q('watch', 'both', w, WATCH, `${R}/w\0tokA\0`);
    await ev('initial event', 'both', w);
    await q('watch again', 'both', w, WATCH, `${R}/w\0tokA\0`);
    await q('watch same path, other token', 'both', w, WATCH, `${R}/w\0tokB\0`);
    await ev('initial event tokB', 'both', w);
    await q('watch deep', 'both', w, WATCH, `${R}/w/x/deep\0tokD\0`);
    await ev('initial event deep', 'both', w);
    await q('write below', 'both', a, WRITE, `${R}/w/x\0v`);
    await ev('events of write below', 'c', w);
    await q('mkdir existing', 'both', a, MKDIR, `${R}/w/x\0`);
    await ev('events of mkdir existing', 'both', w);
    await q('set perms', 'both', a, SET_PERMS, `${R}/w/x\0n0\0`);
    await ev('events of set perms', 'c', w);
    await q('unwatch tokB', 'both', w, UNWATCH, `${R}/w\0tokB\0`);
    await q('rm subtree', 'both', a, RM, `${R}/w/x\0`);
    await ev('events of rm subtree', 'c', w);
    await q('write parent of watch', 'both', a, WRITE, `${R}\0`);
    await ev('events of write above', 'both', w);
    await q('watch relative', 'both', w, WATCH, `${rel}\0tokR\0`);
    await ev('initial event relative', 'both', w);
    await q('write under relative', 'both', a, WRITE, `/local/domain/0/${rel}/c\0`);
    await ev('events of relative', 'both', w);
    await q('unwatch relative by absolute path', 'c', w, UNWATCH, `/local/domain/0/${rel}\0tokR\0`);
    await q('unwatch relative', 'c', w, UNWATCH, `${rel}\0tokR\0`);
    await q('unwatch unknown', 'c', w, UNWATCH, `${R}/w\0nosuch\0`);
    await q('watch three args', 'c', w, WATCH, `${R}/w\0tokC\0extra\0`);
    await q('watch one arg', 'c', w, WATCH, `${R}/w\0`);
    await q('watch invalid path', 'c', w, WATCH, `${R}//w\0tokE\0`);
    await ev('no events from failed watches', 'both', w);
    await q('watch @introduceDomain', 'both', w, WATCH, '@introduceDomain\0tokI\0');
    await ev('initial event @introduceDomain', 'both', w);
    await q('watch @other', 'c', w, WATCH, '@other\0tokO\0');
    await ev('events of watch @other', 'c', w);
    await q('watch in a transaction header', 'both', w, WATCH, `${R}/t\0tokT\0`, { tx: 4242 });
    await ev('initial event tx header', 'both', w);
    await q('reset watches', 'c', w, RESET_WATCHES, '\0');
    await q('write after reset', 'both', a, WRITE, `${R}/w\0after`);
    await ev('events after reset', 'c', w);
    await q('cleanup relative', 'both', a, RM, `/local/domain/0/${rel}\0`);
  },

  async tx({ R, conn, q, ev }) {
    const { TRANSACTION_START, TRANSACTION_END, READ, WRITE, RM, WATCH } = T();
    const a = await conn();
    const b = await conn();
    const w = await conn();
    await q('setup', 'both', a, WRITE, `${R}/t\0one`);
    const t1 = txOf(await q('start', 'both', a, TRANSACTION_START, '\0', { show: anyTx }));
    await q('read in tx', 'both', a, READ, `${R}/t\0`, { tx: t1 });
    await q('write outside', 'both', b, WRITE, `${R}/t\0two`);
    await q('read in tx after outside write', 'both', a, READ, `${R}/t\0`, { tx: t1 });
    await q('write in tx', 'both', a, WRITE, `${R}/t\0three`, { tx: t1 });
    await q('commit conflict', 'both', a, TRANSACTION_END, 'T\0', { tx: t1 });
    await q('value after conflict', 'both', a, READ, `${R}/t\0`);
    await q('end again', 'both', a, TRANSACTION_END, 'T\0', { tx: t1 });
    await q('unknown tx', 'both', a, READ, `${R}/t\0`, { tx: 0x5a5a });
    const t2 = txOf(await q('start 2', 'both', a, TRANSACTION_START, '\0', { show: anyTx }));
    await q('start inside tx', 'c', a, TRANSACTION_START, '\0', { tx: t2 });
    await q('end with X', 'c', a, TRANSACTION_END, 'X\0', { tx: t2 });
    await q('end with empty', 'c', a, TRANSACTION_END, '\0', { tx: t2 });
    await q('watch', 'both', w, WATCH, `${R}\0tw\0`);
    await ev('initial event', 'both', w);
    await q('create in tx', 'both', a, WRITE, `${R}/n/deep\0new`, { tx: t2 });
    await q('rm in tx', 'both', a, RM, `${R}/t\0`, { tx: t2 });
    await q('read created outside', 'both', a, READ, `${R}/n/deep\0`);
    await q('read created inside', 'both', a, READ, `${R}/n/deep\0`, { tx: t2 });
    await q('read removed inside', 'both', a, READ, `${R}/t\0`, { tx: t2 });
    await ev('no events before commit', 'both', w);
    await q('commit', 'both', a, TRANSACTION_END, 'T\0', { tx: t2 });
    await ev('events at commit', 'c', w);
    await q('read after commit', 'both', a, READ, `${R}/n/deep\0`);
    await q('read removed after commit', 'both', a, READ, `${R}/t\0`);
    const t3 = txOf(await q('start 3', 'both', a, TRANSACTION_START, '\0', { show: anyTx }));
    await q('write in aborted tx', 'both', a, WRITE, `${R}/ab\0x`, { tx: t3 });
    await q('abort', 'both', a, TRANSACTION_END, 'F\0', { tx: t3 });
    await q('aborted write invisible', 'both', a, READ, `${R}/ab\0`);
    await ev('no events for abort', 'both', w);
    // A transaction that only reads commits even if the node changed? (cxenstored: EAGAIN)
    const t4 = txOf(await q('start 4', 'both', a, TRANSACTION_START, '\0', { show: anyTx }));
    await q('read only in tx', 'both', a, READ, `${R}/n/deep\0`, { tx: t4 });
    await q('write outside 2', 'both', b, WRITE, `${R}/n/deep\0changed`);
    await q('commit read-only tx', 'c', a, TRANSACTION_END, 'T\0', { tx: t4 });
    // Two transactions in flight on one connection.
    const t5 = txOf(await q('start 5', 'both', a, TRANSACTION_START, '\0', { show: anyTx }));
    const t6 = txOf(await q('start 6', 'both', a, TRANSACTION_START, '\0', { show: anyTx }));
    await q('write in 5', 'both', a, WRITE, `${R}/five\0a`, { tx: t5 });
    await q('write in 6', 'both', a, WRITE, `${R}/six\0b`, { tx: t6 });
    await q('commit 6', 'both', a, TRANSACTION_END, 'T\0', { tx: t6 });
    await q('commit 5', 'c', a, TRANSACTION_END, 'T\0', { tx: t5 });
    await ev('events of two transactions', 'c', w);
  },

  async misc({ conn, q }) {
    const { GET_DOMAIN_PATH, IS_DOMAIN_INTRODUCED, CONTROL, RESET_WATCHES } = T();
    const a = await conn();
    await q('get domain path 0', 'both', a, GET_DOMAIN_PATH, '0\0');
    await q('get domain path 7', 'both', a, GET_DOMAIN_PATH, '7\0');
    await q('get domain path abc', 'c', a, GET_DOMAIN_PATH, 'abc\0');
    await q('get domain path none', 'c', a, GET_DOMAIN_PATH, '');
    await q('is introduced 0', 'both', a, IS_DOMAIN_INTRODUCED, '0\0');
    await q('is introduced DOMID_SELF', 'c', a, IS_DOMAIN_INTRODUCED, '32752\0');
    await q('is introduced 1000', 'env', a, IS_DOMAIN_INTRODUCED, '1000\0');
    if (domid) await q('is introduced guest', 'env', a, IS_DOMAIN_INTRODUCED, `${domid}\0`);
    await q('reset watches', 'both', a, RESET_WATCHES, '\0');
    await q('control print', 'c', a, CONTROL, 'print\0xq-cmp\0');
    await q('control check', 'c', a, CONTROL, 'check\0');
    await q('control nonsense', 'c', a, CONTROL, 'nonsense\0');
    await q('control help', 'env', a, CONTROL, 'help\0', {
      show: (t) =>
        t
          .split('\n')
          .map((l) => l.split('\t')[0])
          .filter(Boolean)
          .sort()
          .join(','),
    });
    await q('control quota', 'env', a, CONTROL, 'quota\0', { show: (t) => t.split('\n')[0] });
    for (const type of [15, 16, 20, 23, 24, 25, 26, 99, 65535]) {
      const c = await conn();
      await q(`type ${type}`, type < 23 || type > 26 ? 'c' : 'c', c, type, '\0');
      await q(`type ${type}: connection still usable`, 'c', c, GET_DOMAIN_PATH, '0\0');
    }
    // A header over the payload limit: the connection goes (cxenstored); nothing else answers.
    const big = await conn();
    await q('payload 4097', 'c', big, GET_DOMAIN_PATH, '0\0', { len: 4097 });
    await q('after payload 4097', 'c', big, GET_DOMAIN_PATH, '0\0');
  },
};

const REAL_SOCKET = opts['real-socket'];
const impl = opts.xenstored === 'c' ? 'c' : 'ocaml';
if (runner.anySelected(CMP)) {
  let oursUp = false;
  await check('xs-ours', async () => {
    expect(ours !== null, `our daemon is not built (${oursCli})`);
    await within(60_000, 'xencons-xenstored ready', ours.ready);
    const c = await Raw.open(OURS_SOCKET);
    const r = await c.request(T().GET_DOMAIN_PATH, '0\0');
    c.close();
    expect(r.text === '/local/domain/0\0', `GET_DOMAIN_PATH 0 answered ${JSON.stringify(r.text)}`);
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
      const R = `/xq-cmp-${process.pid}-${area}`;
      const real = await transcript(REAL_SOCKET, R, SCENARIOS[area]);
      const mine = await transcript(OURS_SOCKET, R, SCENARIOS[area]);
      for (const sock of [REAL_SOCKET, OURS_SOCKET]) {
        const c = await Raw.open(sock);
        await c.request(T().RM, `${R}\0`);
        c.close();
      }
      const must = [];
      for (const [step, r] of real) {
        const m = mine.get(step);
        const ourText = m?.text ?? '(no step)';
        if (ourText === r.text) continue;
        const strict = r.level === 'both' || (r.level === 'c' && impl === 'c');
        note(`cmp ${area} '${step}' [${r.level}]: ${impl} ${r.text} | ours ${ourText}`);
        if (strict) must.push(`'${step}': ${impl} ${r.text}, ours ${ourText}`);
      }
      note(`cmp ${area}: ${real.size} steps, ${must.length} required differences`);
      expect(must.length === 0, must.join('; '));
    });
  }
}

if (ours !== null && ours.child.exitCode === null) ours.child.kill('SIGTERM');

lap('script', t0);
note(`ms: ${runner.laps()} (node up ${Math.round(t0)} ms before the script)`);
// A parked xenbus read must not keep the process alive.
runner.finish();
