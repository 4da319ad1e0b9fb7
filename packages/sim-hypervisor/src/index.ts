export {
  connectHypervisor,
  HypervisorClient,
  type MemoryRegion,
  readDom0Token,
  type SimCredentials,
  simCredentialsFromEnv,
} from './client.js';
export { isSimErrno, type SimErrno, SimHypervisorError } from './errors.js';
export { EVENT_FILE_SIZE, MAX_PORTS } from './event-file.js';
export { SimEventHandle } from './event-handle.js';
export {
  FIRST_FRAME,
  GNTTAB_NR_RESERVED_ENTRIES,
  Hypervisor,
  type HypervisorOptions,
  PAGE_SIZE,
  startHypervisor,
} from './hypervisor.js';
export { simPaths } from './paths.js';
export {
  type DomainSummary,
  LineDecoder,
  MAX_LINE,
  type PageRef,
  type Reply,
  type Request,
} from './protocol.js';
