// @xencons/evtchn on real Xen: the package's conformance suite (the same cases vitest runs on the
// simulated host) against /dev/xen/evtchn in dom0, dom0 talking to itself (an unbound port for
// domid 0 and an interdomain bind to it work on real Xen). Peers are other node processes of
// dom0 (the package's dist/conformance/peer.js); shared pages are temp files.
// Run by dom0-run.sh with the host's node binary from the payload. Prints one line per case:
// `PASS evtchn-<case>` or `FAIL evtchn-<case>: reason`, and a `NOTE evtchn: ...` line with the
// time each took.
//
//   node evtchn-checks.mjs [--only PATTERN]
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { checkRunner } from './lib.mjs';

// The slowest case (the ring exchange) takes about a minute under TCG.
const runner = checkRunner({ timeoutMs: 240_000, noteTag: 'evtchn' });
const { check, line } = runner;

const conformanceJs = fileURLToPath(
  new URL('../repo/packages/evtchn/dist/conformance/index.js', import.meta.url),
);
if (!existsSync(conformanceJs)) {
  line('FAIL', 'evtchn', '@xencons/evtchn is not built (packages/evtchn/dist)');
  process.exit(1);
}
const { conformanceCases, linuxConformanceTarget, runCase } = await import(conformanceJs);
const names = conformanceCases.map((c) => `evtchn-${c.name}`);
if (!runner.anySelected(names)) process.exit(0);

const target = linuxConformanceTarget();
try {
  for (const c of conformanceCases) {
    await check(`evtchn-${c.name}`, () => runCase(target, c));
  }
} finally {
  await target.close();
}
runner.note(`ms: ${runner.laps()}`);
runner.finish();
