// The same raw requests sent to two xenstore daemons, their answers compared step by step.
// Used in dom0 by xenstore-checks.mjs (the real xenstored of the boot next to ours) and by
// packages/xenstored's tests (Debian's C xenstored through the LD_PRELOAD shim next to ours).
//
//   import { AREAS, compareArea } from './xenstore-compare.mjs';
//   const { steps, differences, required } =
//     await compareArea('rw', { codec, realSocket, oursSocket, impl: 'c', domid: '', tag });
//
// `codec` is @xencons/xenstore (XsDecoder, XsType). Each step is marked: `both` must match
// cxenstored and oxenstored, `c` must match cxenstored (a difference from oxenstored is only
// recorded), `env` is recorded only (our daemon has no hypervisor: it knows no domain but the
// ones it was told about). `required` lists the differences the marks do not allow for `impl`.
import { connect } from 'node:net';

const ERROR = 16;
const WATCH_EVENT = 15;

/** describeError of lib.mjs, without importing it (this module is also used outside the VM). */
function describe(err) {
  return err instanceof Error ? err.message : String(err);
}

/** A bare connection: raw frames out, replies matched by req_id, watch events collected. */
export class Raw {
  /** Connects; retries while the listen queue is full (cxenstored listens with a backlog of 1). */
  static async open(path, codec) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await new Promise((resolve, reject) => {
          const sock = connect(path);
          sock.once('connect', () => resolve(new Raw(sock, codec)));
          sock.once('error', reject);
        });
      } catch (err) {
        if (err?.code !== 'EAGAIN' || attempt >= 100) throw err;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  constructor(sock, codec) {
    this.sock = sock;
    this.codec = codec;
    this.reqId = 1;
    this.pending = new Map();
    this.events = [];
    this.closed = false;
    const decoder = new codec.XsDecoder({ peer: 'daemon' });
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
        this.events.push(`undecodable: ${describe(err)}`);
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
    await this.request(this.codec.XsType.GET_DOMAIN_PATH, '0\0');
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
async function transcript(socket, R, scenario, env) {
  const steps = new Map();
  const conns = [];
  const norm = (text) => text.split(R).join('$R');
  const record = (name, level, text) => {
    if (steps.has(name)) throw new Error(`step ${name} recorded twice`);
    steps.set(name, { level, text: norm(text) });
  };
  const ctx = {
    R,
    T: env.codec.XsType,
    domid: env.domid,
    pid: env.pid,
    async conn() {
      const c = await Raw.open(socket, env.codec);
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

/** The transaction id of a TRANSACTION_START reply. */
const txOf = (r) => Number.parseInt(r.text, 10) || 0;
const anyTx = () => '<tx id>';

/** The comparison scenarios, one per area. Both daemons run them as dom0 over their socket. */
export const SCENARIOS = {
  async rw({ R, conn, q, T }) {
    const { READ, WRITE, MKDIR, RM } = T;
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
    await q('directory two args', 'c', a, T.DIRECTORY, `${R}/a\0x\0`);
    await q('get perms two args', 'c', a, T.GET_PERMS, `${R}/a\0x\0`);
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
    // oxenstored applies its 2048-byte node size to dom0 too (E2BIG).
    await q('write 4000 bytes', 'c', a, WRITE, `${R}/big\0${'v'.repeat(4000)}`);
    await q('read 4000 bytes', 'c', a, READ, `${R}/big\0`, { show: (t) => `${t.length} bytes` });
  },

  async dir({ R, conn, q, T }) {
    const { DIRECTORY, DIRECTORY_PART, WRITE, MKDIR } = T;
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
    for (let i = 0; i < 70; i++)
      names.push(`child-number-${String(i).padStart(4, '0')}-${'x'.repeat(42)}`);
    for (const n of names) await a.request(MKDIR, `${R}/big/${n}\0`);
    // oxenstored 4.17 does not answer this at all (the request times out).
    await q('directory over 4096 bytes', 'c', a, DIRECTORY, `${R}/big\0`);
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
      q(name, level, a, T.GET_DOMAIN_PATH, '0\0', { show: () => text });
    await q2('directory_part pages', 'c', `${pages + 1} pages`);
    await q2(
      'directory_part lists every child in order',
      'c',
      listed.join(',') === names.join(',') ? 'yes' : `no: ${listed.length} names`,
    );
  },

  async paths({ R, conn, q, T }) {
    const { READ, WRITE } = T;
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

  async perms({ R, conn, q, T, domid }) {
    const { GET_PERMS, SET_PERMS, WRITE } = T;
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

  async watch({ R, conn, q, ev, T }) {
    const { WATCH, UNWATCH, WRITE, RM, MKDIR, SET_PERMS, RESET_WATCHES } = T;
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

  async tx({ R, conn, q, ev, T }) {
    const { TRANSACTION_START, TRANSACTION_END, READ, WRITE, RM, WATCH } = T;
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
    // oxenstored: EIO for a transaction id it does not know.
    await q('end again', 'c', a, TRANSACTION_END, 'T\0', { tx: t1 });
    await q('unknown tx', 'c', a, READ, `${R}/t\0`, { tx: 0x5a5a });
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

  async quota({ R, conn, q, T }) {
    const { CONTROL, WRITE, MKDIR, RM, SET_PERMS, WATCH, UNWATCH } = T;
    const a = await conn();
    const w = await conn();
    // dom0's memory as cxenstored accounts it; compared as the change each step makes, since
    // the real daemon's store holds far more than ours.
    let last = 0;
    const memory = async () => {
      const r = await a.request(CONTROL, 'quota\x000\0');
      const m = /memory +: +(\d+)/.exec(r.text);
      return m === null ? Number.NaN : Number(m[1]);
    };
    // (A transaction's copies are keyed by its generation, whose digits differ between daemons.)
    const step = async (name, conn2, type, payload, opts, level = 'c') => {
      last = await memory();
      await q(name, 'c', conn2, type, payload, opts);
      // Until it is written out, a queued watch event counts too: wait until it has been.
      await conn2.takeEvents();
      const now = await memory();
      await q(`${name}: memory change`, level, a, T.GET_DOMAIN_PATH, '0\0', {
        show: () => String(now - last),
      });
    };
    await step('write', a, WRITE, `${R}/a\0x`);
    await step('write longer', a, WRITE, `${R}/a\0xyz`);
    await step('write deep', a, WRITE, `${R}/a/b/c\x0012345`);
    await step('set perms', a, SET_PERMS, `${R}/a/b\0n0\0r0\0`);
    await step('mkdir', a, MKDIR, `${R}/m\0`);
    await step('watch', w, WATCH, `${R}/a\0tokk\0`);
    await step('unwatch', w, UNWATCH, `${R}/a\0tokk\0`);
    await step('rm', a, RM, `${R}/a\0`);
    const t = Number.parseInt((await a.request(T.TRANSACTION_START, '\0')).text, 10);
    const before = await memory();
    await step('write in a transaction', a, WRITE, `${R}/t\0abc`, { tx: t }, 'env');
    await step('commit', a, T.TRANSACTION_END, 'T\0', { tx: t }, 'env');
    const after = await memory();
    await q('transaction: net memory change', 'c', a, T.GET_DOMAIN_PATH, '0\0', {
      show: () => String(after - before),
    });
    await q('quota of an unknown domain', 'c', a, CONTROL, 'quota\x0031999\0');
    await q('quota set without value', 'c', a, CONTROL, 'quota\0set\0nodes\0');
    await q('quota set zero', 'c', a, CONTROL, 'quota\0set\0nodes\0' + '0\0');
    await q('quota set unknown', 'c', a, CONTROL, 'quota\0set\0nonsense\0' + '5\0');
    await q('quota-soft', 'c', a, CONTROL, 'quota-soft\0');
    await q('quota-soft not set', 'c', a, CONTROL, 'quota-soft\0whatever\0');
    await q('quota-soft set unknown', 'c', a, CONTROL, 'quota-soft\0set\0nodes\0' + '5\0');
    await q('memreport without a trace', 'env', a, CONTROL, 'memreport\0');
  },

  async misc({ conn, q, T, domid }) {
    const { GET_DOMAIN_PATH, IS_DOMAIN_INTRODUCED, CONTROL, RESET_WATCHES } = T;
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

export const AREAS = Object.keys(SCENARIOS);

/**
 * Runs one area on both daemons (the real one first) and compares the transcripts. Each daemon
 * gets its own scratch root, removed afterwards.
 */
export async function compareArea(area, { codec, realSocket, oursSocket, impl, domid = '', tag }) {
  const R = `/xq-cmp-${tag ?? process.pid}-${area}`;
  const env = { codec, domid, pid: process.pid };
  const real = await transcript(realSocket, R, SCENARIOS[area], env);
  const mine = await transcript(oursSocket, R, SCENARIOS[area], env);
  for (const sock of [realSocket, oursSocket]) {
    const c = await Raw.open(sock, codec);
    await c.request(codec.XsType.RM, `${R}\0`);
    c.close();
  }
  const differences = [];
  const required = [];
  for (const [step, r] of real) {
    const ours = mine.get(step)?.text ?? '(no step)';
    if (ours === r.text) continue;
    const text = `'${step}' [${r.level}]: ${impl} ${r.text} | ours ${ours}`;
    differences.push(text);
    if (r.level === 'both' || (r.level === 'c' && impl === 'c')) required.push(text);
  }
  return { steps: real.size, differences, required };
}
