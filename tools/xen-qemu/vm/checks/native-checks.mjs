// The native core (@xencons/native) against the real Xen devices in dom0. Run by dom0-run.sh with
// the host's node binary from the payload, so the addon's ABI matches the node that built it.
// Prints one line per check: `PASS name` or `FAIL name: reason`.
//
//   node native-checks.mjs --domid N --nonce NONCE --log /var/log/xen/console/guest-xqguest.log
//                          [--only PATTERN]
//
// Checks (each bounded): native-load, native-evtchn, native-grant-map, and, when a guest is given,
// native-console-page and native-ring-codec (the indices and bytes on the real page, through the
// addon and @xencons/ring, against what xenconsoled logged).
import { spawnSync } from 'node:child_process';
import { closeSync, constants, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { checkRunner, describeError, until } from './lib.mjs';

const runner = checkRunner({
  options: {
    domid: { type: 'string', default: '' },
    nonce: { type: 'string', default: 'none' },
    log: { type: 'string', default: '' },
  },
});
const { opts, check, line } = runner;

function xenstoreRead(path) {
  const r = spawnSync('xenstore-read', [path], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0)
    throw new Error(`xenstore-read ${path}: ${(r.stderr || r.error?.message || '').trim()}`);
  return r.stdout.trim();
}

const openDev = (path) =>
  openSync(path, constants.O_RDWR | constants.O_NONBLOCK | constants.O_CLOEXEC);

// ---- the addon ------------------------------------------------------------------------------
const nativeDir = fileURLToPath(new URL('../repo/packages/native/', import.meta.url));
const anyNativeSelected = runner.anySelected([
  'native',
  'native-load',
  'native-evtchn',
  'native-grant-map',
  'native-console-page',
  'native-ring-codec',
]);
if (!anyNativeSelected) process.exit(0);

const binaries = existsSync(nativeDir)
  ? readdirSync(nativeDir).filter((f) => f.endsWith('.node'))
  : [];
if (binaries.length === 0 || !existsSync(`${nativeDir}index.js`)) {
  line('FAIL', 'native', 'addon not built (no packages/native/*.node)');
  process.exit(1);
}

// Loaded whether or not `native-load` is selected (`--only` may pick only later checks): the
// check reports the outcome, the load itself always happens.
const nativeModule = await import(`${nativeDir}index.js`);
let native = nativeModule.loadNative();
await check('native-load', async () => {
  native = nativeModule.loadNative();
  if (native === null)
    throw new Error(`loadNative() returned null: ${nativeModule.nativeUnavailableReason()}`);
});
if (native === null) {
  if (!runner.selected('native-load')) line('FAIL', 'native', 'addon did not load');
  process.exit(1);
}
const n = native;

// ---- event channels: two handles in dom0, bound to each other -------------------------------
await check('native-evtchn', async () => {
  const a = openDev('/dev/xen/evtchn');
  const b = openDev('/dev/xen/evtchn');
  const pending = new Uint32Array(64);
  const has = (fd, port) => {
    const count = n.evtchnPending(fd, pending);
    return pending.subarray(0, count).includes(port);
  };
  try {
    const portA = n.evtchnBindUnboundPort(a, 0);
    const portB = n.evtchnBindInterdomain(b, 0, portA);
    // b -> a, waited for by polling the pending ports.
    n.evtchnNotify(b, portB);
    await until(5000, `event on port ${portA} after notify of ${portB}`, () => has(a, portA));
    n.evtchnUnmask(a, portA);
    // a -> b, waited for on the addon's poll thread.
    let woke = false;
    const id = n.watchFd(b, () => {
      woke = true;
    });
    try {
      n.evtchnNotify(a, portA);
      await until(5000, `watchFd wake-up for port ${portB}`, () => woke);
      await until(1000, `event on port ${portB}`, () => has(b, portB));
    } finally {
      n.unwatchFd(id);
    }
    n.evtchnUnmask(b, portB);
    n.evtchnUnbind(b, portB);
    n.evtchnUnbind(a, portA);
  } finally {
    closeSync(a);
    closeSync(b);
  }
});

// ---- gntalloc shares a page, gntdev maps it (dom0 to itself) --------------------------------
await check('native-grant-map', async () => {
  const ga = openDev('/dev/xen/gntalloc');
  const gd = openDev('/dev/xen/gntdev');
  let shared = null;
  let mapped = null;
  try {
    const share = n.gntallocShare(ga, 0, 1, true);
    shared = share.buffer;
    if (share.refs.length !== 1) throw new Error(`gntallocShare gave ${share.refs.length} refs`);
    mapped = n.gntdevMap(gd, 0, share.refs, true);
    const s = new Uint8Array(shared);
    const m = new Uint8Array(mapped);
    if (s.length < 4096 || m.length < 4096)
      throw new Error(`short mappings ${s.length}/${m.length}`);
    for (let i = 0; i < 4096; i++) s[i] = (i * 7 + 3) & 0xff;
    for (let i = 0; i < 4096; i++) {
      if (m[i] !== ((i * 7 + 3) & 0xff))
        throw new Error(`gntdev view differs at byte ${i} (ref ${share.refs[0]})`);
    }
    m.fill(0x5a, 100, 200);
    if (s[150] !== 0x5a || s[99] !== ((99 * 7 + 3) & 0xff))
      throw new Error('write through gntdev not seen through gntalloc');
  } finally {
    if (mapped) n.unmap(mapped);
    if (shared) n.unmap(shared);
    closeSync(gd);
    closeSync(ga);
  }
});

// ---- the guest's console page, mapped the way xenconsoled does ------------------------------
// struct xencons_interface: in[1024] @0, out[2048] @1024, in_cons @3072, in_prod @3076,
// out_cons @3080, out_prod @3084 (io/console.h).
const OUT_OFF = 1024;
const OUT_SIZE = 2048;
const OUT_CONS = 3080;
const OUT_PROD = 3084;
const GNTTAB_RESERVED_CONSOLE = 0;

/** Maps the console page of `domid`: grant 0 through gntdev, else the ring-ref frame via privcmd. */
function mapConsole(domid) {
  const errors = [];
  const gd = openDev('/dev/xen/gntdev');
  try {
    return {
      how: 'grant 0 (gntdev)',
      page: n.gntdevMap(gd, domid, [GNTTAB_RESERVED_CONSOLE], false),
    };
  } catch (err) {
    errors.push(`gntdev: ${describeError(err)}`);
  } finally {
    closeSync(gd);
  }
  const pc = openDev('/dev/xen/privcmd');
  try {
    const mfn = Number(xenstoreRead(`/local/domain/${domid}/console/ring-ref`));
    return { how: `frame ${mfn} (privcmd)`, page: n.privcmdMapForeign(pc, domid, [mfn], false) };
  } catch (err) {
    errors.push(`privcmd: ${describeError(err)}`);
    throw new Error(errors.join('; '));
  } finally {
    closeSync(pc);
  }
}

/** The last `count` bytes the guest produced, straight from the `out` ring. */
function ringTail(page, prod, count) {
  const bytes = new Uint8Array(page);
  const tail = Buffer.alloc(count);
  for (let i = 0; i < count; i++) tail[i] = bytes[OUT_OFF + ((prod - count + i) & (OUT_SIZE - 1))];
  return tail;
}

const domid = opts.domid === '' ? null : Number(opts.domid);
let consolePage = null;
await check('native-console-page', async () => {
  if (domid === null) throw new Error('no guest');
  const { how, page } = mapConsole(domid);
  consolePage = page;
  const view = new DataView(page);
  const prod = view.getUint32(OUT_PROD, true);
  const text = ringTail(page, prod, Math.min(prod, OUT_SIZE)).toString('latin1');
  const banner = `XQ-GUEST-BANNER nonce=${opts.nonce}`;
  if (!text.includes(banner)) {
    throw new Error(
      `mapped ${how}, out_prod=${prod}, but no '${banner}' in the out ring (ends: ${JSON.stringify(text.slice(-120))})`,
    );
  }
});

await check('native-ring-codec', async () => {
  if (domid === null) throw new Error('no guest');
  if (consolePage === null) consolePage = mapConsole(domid).page;
  const view = new DataView(consolePage);
  const cons = view.getUint32(OUT_CONS, true);
  const prod = view.getUint32(OUT_PROD, true);
  const queued = n.ringQueued(consolePage, OUT_SIZE, OUT_PROD, OUT_CONS);
  if (queued !== (prod - cons) >>> 0)
    throw new Error(`ringQueued ${queued}, indices prod=${prod} cons=${cons}`);
  if (queued !== 0)
    throw new Error(`xenconsoled left ${queued} bytes unread (prod=${prod} cons=${cons})`);
  const log = readFileSync(opts.log);
  if (log.length !== prod)
    throw new Error(`out_prod=${prod} but xenconsoled logged ${log.length} bytes`);
  const count = Math.min(prod, OUT_SIZE);
  const logTail = log.subarray(log.length - count);
  if (!ringTail(consolePage, prod, count).equals(logTail))
    throw new Error(`the last ${count} ring bytes differ from the log's`);
  // @xencons/ring on the live page (its view of the indices), then on a copy of the page with
  // out_cons rewound, so its consumer replays everything the ring still holds, wrap included.
  const ringJs = fileURLToPath(new URL('../repo/packages/ring/dist/index.js', import.meta.url));
  if (!existsSync(ringJs)) throw new Error('@xencons/ring is not built (packages/ring/dist)');
  const ring = await import(ringJs);
  const live = ring.consoleBackendRings(consolePage).out;
  if (live.available() !== queued)
    throw new Error(`@xencons/ring sees ${live.available()} bytes queued, the indices ${queued}`);
  const copy = new ArrayBuffer(4096);
  new Uint8Array(copy).set(new Uint8Array(consolePage, 0, 4096));
  new DataView(copy).setUint32(OUT_CONS, (prod - count) >>> 0, true);
  const replay = ring.consoleBackendRings(copy).out;
  const got = Buffer.alloc(OUT_SIZE);
  const read = replay.read(got);
  if (read !== count) throw new Error(`@xencons/ring read ${read} bytes of ${count}`);
  if (!got.subarray(0, read).equals(logTail))
    throw new Error(`@xencons/ring read bytes that differ from xenconsoled's log`);
  if (new DataView(copy).getUint32(OUT_CONS, true) !== prod)
    throw new Error('@xencons/ring did not publish out_cons = out_prod');
});
if (consolePage) n.unmap(consolePage);

runner.finish();
