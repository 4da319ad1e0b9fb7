import { xenconsTsup } from '../../tools/tsup-config.js';

// The conformance suite ships in dist so the real-Xen check (plain node in dom0) can run it;
// conformance/peer.js is the program the suite starts as a peer process.
export default xenconsTsup(
  ['src/index.ts', 'src/conformance/index.ts', 'src/conformance/peer.ts'],
  { dts: { entry: ['src/index.ts', 'src/conformance/index.ts'] } },
);
