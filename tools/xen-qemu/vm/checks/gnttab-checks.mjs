// @xencons/gnttab on real Xen: its conformance suite (the same cases vitest runs on the
// simulated host) through the Linux backend in dom0, from the built dist, plus the raw errnos
// the kernel answers to each misuse (NOTE lines). Run by dom0-run.sh as root.
// Prints one line per check: `PASS name` or `FAIL name: reason`, and `NOTE gnttab: ...` lines.
//
//   node gnttab-checks.mjs [--domid N] [--only PATTERN]
//
// Checks: gnttab-<case> for every conformance case (see packages/gnttab/README.md). dom0 shares
// with itself through gntalloc and maps through gntdev; the peer domain is another dom0 process;
// the unprivileged peer runs as nobody. With a guest (--domid), its console page is mapped as
// grant 0 and by the frame in console/ring-ref (privcmd). Cases that need a guest FAIL without one.
import { closeSync, constants, existsSync, openSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { checkRunner, describeError, tool } from './lib.mjs';

const runner = checkRunner({
  options: { domid: { type: 'string', default: '' } },
  noteTag: 'gnttab',
  timeoutMs: 60_000,
});
const { opts, check, line, note } = runner;

const dist = fileURLToPath(new URL('../repo/packages/gnttab/dist/', import.meta.url));
if (!existsSync(`${dist}conformance/index.js`)) {
  line('FAIL', 'gnttab', '@xencons/gnttab is not built (packages/gnttab/dist)');
  process.exit(1);
}
const suite = await import(`${dist}conformance/index.js`);
const { gnttabConformanceCases: cases, applies, openLinuxFixture } = suite;
const names = cases.map((c) => `gnttab-${c.name}`);
if (!runner.anySelected(['gnttab', 'gnttab-errnos', ...names])) process.exit(0);

const guest = opts.domid === '' ? null : Number(opts.domid);
let consoleDomain = null;
if (guest !== null) {
  try {
    const ringRef = (
      await tool('xenstore-read', [`/local/domain/${guest}/console/ring-ref`])
    ).trim();
    consoleDomain = { domid: guest, ringRef: Number(ringRef) };
    note(`guest ${guest}: console/ring-ref ${ringRef}`);
  } catch (err) {
    note(`guest ${guest}: no console/ring-ref: ${describeError(err)}`);
  }
}

let fx;
try {
  fx = await openLinuxFixture({
    domid: 0,
    console: consoleDomain,
    peerScript: `${dist}conformance/peer.js`,
  });
} catch (err) {
  line('FAIL', 'gnttab', `opening the Linux fixture: ${describeError(err)}`);
  process.exit(1);
}

for (const c of cases) {
  // Real Xen has no guest whose console page is withheld from dom0: that case is the simulated
  // host's alone.
  if (c.needs?.includes('frameOnlyConsole')) {
    if (runner.selected(`gnttab-${c.name}`)) note(`gnttab-${c.name}: not applicable on real Xen`);
    continue;
  }
  await check(`gnttab-${c.name}`, async () => {
    if (!applies(c, fx)) throw new Error(`needs ${c.needs.join(', ')} (no guest console here)`);
    await c.run(fx);
  });
}

// What Linux answers to each misuse, straight from the native core (recorded, not checked).
if (runner.selected('gnttab-errnos')) {
  const { requireNative } = await import(
    fileURLToPath(new URL('../repo/packages/native/index.js', import.meta.url))
  );
  const n = requireNative();
  const dev = (name) => openSync(`/dev/xen/${name}`, constants.O_RDWR);
  const raw = (what, fn) => {
    try {
      const r = fn();
      n.unmap(r.buffer ?? r);
      note(`${what}: no error`);
    } catch (err) {
      note(`${what}: ${err.code} from ${err.syscall ?? '?'}`);
    }
  };
  const ga = dev('gntalloc');
  const gd = dev('gntdev');
  const pc = dev('privcmd');
  try {
    const other = n.gntallocShare(ga, fx.otherDomid, 1, true);
    raw(`gntdev map of a grant to domain ${fx.otherDomid}`, () =>
      n.gntdevMap(gd, 0, other.refs, true),
    );
    n.unmap(other.buffer);
    const ended = n.gntallocShare(ga, 0, 1, true);
    n.unmap(ended.buffer);
    raw('gntdev map of an ended grant to us', () => n.gntdevMap(gd, 0, ended.refs, false));
    const ro = n.gntallocShare(ga, 0, 1, false);
    raw('gntdev writable map of a read-only grant', () => n.gntdevMap(gd, 0, ro.refs, true));
    raw('gntdev read-only map of a read-only grant', () => n.gntdevMap(gd, 0, ro.refs, false));
    n.unmap(ro.buffer);
    raw('gntdev map of ref 8000 (never granted)', () => n.gntdevMap(gd, 0, [8000], false));
    raw('gntdev map of ref 0x7fffffff (past the table)', () =>
      n.gntdevMap(gd, 0, [0x7fffffff], false),
    );
    raw('gntdev map from domain 0x7000 (none)', () => n.gntdevMap(gd, 0x7000, [8], false));
    if (guest !== null) {
      raw(`privcmd map of frame 0xfffff0 of domain ${guest}`, () =>
        n.privcmdMapForeign(pc, guest, [0xfffff0], false),
      );
    }
    raw('privcmd map of domain 0x7000 (none)', () => n.privcmdMapForeign(pc, 0x7000, [1], false));
    raw('privcmd map of our own frame (dom0)', () => n.privcmdMapForeign(pc, 0, [1], false));
    line('PASS', 'gnttab-errnos');
  } catch (err) {
    line('FAIL', 'gnttab-errnos', describeError(err));
  } finally {
    closeSync(pc);
    closeSync(gd);
    closeSync(ga);
  }
}

await fx.close();
note(`time per check (ms): ${runner.laps()}`);
runner.finish();
