// @xencons/evtchn/conformance: the interface test suite of EventChannels, runnable on any
// backend (vitest here on the simulated host; plain node in dom0 on real Xen).
export {
  type CaseContext,
  type ConformanceCase,
  conformanceCases,
} from './cases.js';
export { type ExchangeReport, runDom0Exchange, runGuestExchange } from './exchange.js';
export { receiveTimed, runTimedSender } from './latency.js';
export { LINUX_SCALE, type LinuxTargetOptions, linuxConformanceTarget } from './linux-target.js';
export { PeerError, PeerProcess, peerScript } from './peer-client.js';
export { type CaseResult, type RunOptions, runCase, runConformance } from './runner.js';
export { SIM_SCALE, type SimTargetOptions, simConformanceTarget } from './sim-target.js';
export type {
  ConformanceScale,
  ConformanceTarget,
  ForeignHandle,
  SharedPage,
} from './target.js';
