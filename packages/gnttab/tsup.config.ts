import { xenconsTsup } from '../../tools/tsup-config.js';

// The conformance suite and its peer program are built too: tools/xen-qemu runs them with plain
// node in dom0, and the suite's peer is always a separate node process. The simulated host is a
// dev dependency, imported only by the suite's sim fixture and peer: kept out of the bundle.
export default xenconsTsup(['src/index.ts'], {
  entry: {
    index: 'src/index.ts',
    'conformance/index': 'src/conformance/index.ts',
    'conformance/peer': 'src/conformance/peer.ts',
  },
  external: ['@xencons/sim-hypervisor'],
  dts: { entry: { index: 'src/index.ts', 'conformance/index': 'src/conformance/index.ts' } },
});
