export {
  DEFAULT_RECONNECT_POLICY,
  openXenstore,
  XenstoreClient,
  type XenstoreClientOptions,
  type XsReconnectPolicy,
  type XsTransactionOptions,
} from './client.js';
export { xsChannels } from './diagnostics.js';
export { XsClientErrorCode } from './errors.js';
export type { XsPayloadBuilder, XsRequestOptions } from './operations.js';
export { XsOperations } from './operations.js';
export { DEFAULT_POLL_MICROS, XsPoller } from './poller.js';
export { type RingTransportOptions, ringTransport, type XsEventChannel } from './ring-transport.js';
export {
  socketTransport,
  XENSTORED_DEFAULT_RUNDIR,
  xenstoredSocketPath,
} from './socket-transport.js';
export { streamTransport } from './stream-transport.js';
export { XsTransaction } from './transaction.js';
export type { XsTransport, XsTransportConnection, XsTransportSink } from './transport.js';
export { XsWatch, type XsWatchEvent, type XsWatchOptions } from './watch.js';
export { findXenbusDevice, XENBUS_DEVICE_PATHS, xenbusTransport } from './xenbus-transport.js';
