import { existsSync } from 'node:fs';
import { nativeUnavailableReason } from '@xencons/native';
import { bundleChildScript, makeTempDir, requirement } from '@xencons/test-utils';
import { afterAll, beforeAll, describe, it } from 'vitest';
import {
  applies,
  type GnttabFixture,
  gnttabConformanceCases,
  openLinuxFixture,
  openSimFixture,
} from './conformance/index.js';

// One suite, every backend this machine has: the simulated host always; real Xen when this runs
// as root in a Xen domain (tools/xen-qemu runs the same cases from dist in dom0 through
// vm/checks/gnttab-checks.mjs). The peer domains are separate node processes running the peer
// program, bundled from its sources for this run.
const needs = requirement('the native addon', nativeUnavailableReason());

let scratch: { path: string; remove: () => void } | undefined;
let peerScript = '';
beforeAll(async () => {
  if (needs.missing !== null) return;
  scratch = makeTempDir('gnttab-peer-');
  peerScript = await bundleChildScript(
    new URL('./conformance/peer.ts', import.meta.url),
    scratch.path,
  );
});
afterAll(() => scratch?.remove());

const onXen = existsSync('/dev/xen/gntdev') && process.getuid?.() === 0;
const backends: [string, () => Promise<GnttabFixture>][] = [
  ['sim', () => openSimFixture({ peerScript })],
];
if (onXen) backends.push(['linux', () => openLinuxFixture({ peerScript })]);

needs.describe('gnttab conformance', () => {
  describe.each(backends)('%s', (_name, open) => {
    let fx: GnttabFixture | undefined;
    beforeAll(async () => {
      fx = await open();
    });
    afterAll(async () => {
      await fx?.close();
    });

    for (const c of gnttabConformanceCases) {
      it(`${c.name}: ${c.title}`, async (ctx) => {
        if (!fx) throw new Error('no fixture');
        if (!applies(c, fx)) ctx.skip(`needs ${c.needs?.join(', ')}`);
        await c.run(fx);
      });
    }
  });
});
