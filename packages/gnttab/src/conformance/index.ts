// The conformance suite of @xencons/gnttab: the same cases for every backend, runnable by vitest
// (src/conformance.test.ts) and by plain node from the built dist (tools/xen-qemu's
// gnttab-checks.mjs runs it in dom0 on real Xen).
export { applies, type ConformanceCase, gnttabConformanceCases, pattern } from './cases.js';
export type { ConsoleDomain, GnttabFixture } from './fixture.js';
export { type LinuxFixtureOptions, openLinuxFixture } from './linux-fixture.js';
export {
  PEER_SCRIPT,
  type Peer,
  PeerError,
  type SpawnPeerOptions,
  spawnPeer,
} from './peer-client.js';
export { openSimFixture, type SimFixtureOptions } from './sim-fixture.js';
