export {
  XENCONS_INTERFACE,
  XENCONSOLE_CONNECTED,
  XENCONSOLE_DISCONNECTED,
} from './console-layout.js';
export {
  type ConsoleBackendRings,
  ConsoleControl,
  type ConsoleFrontendRings,
  consoleBackendRings,
  consoleFrontendRings,
} from './console-rings.js';
export { NATIVE_THRESHOLD, type RingBackend } from './native-backend.js';
export { type PageMemory, PageView } from './page-view.js';
export { resetRing } from './reset-ring.js';
export { RingConsumer } from './ring-consumer.js';
export { RingDuplex, type RingDuplexOptions, type RingSignal } from './ring-duplex.js';
export { RingEndpoint, type RingOptions } from './ring-endpoint.js';
export { type RingLayout, validateRingLayout } from './ring-layout.js';
export { RingProducer } from './ring-producer.js';
export {
  RING_PUMP_DEFAULT_SPIN_NS,
  RingPump,
  type RingPumpEvents,
  type RingPumpOptions,
  type RingPumpWake,
  ringPumpSupported,
} from './ring-pump.js';
export {
  XENSTORE_CONNECTED,
  XENSTORE_DOMAIN_INTERFACE,
  XENSTORE_ERROR_COMM,
  XENSTORE_ERROR_NONE,
  XENSTORE_ERROR_PROTO,
  XENSTORE_ERROR_RINGIDX,
  XENSTORE_RECONNECT,
  XENSTORE_RING_SIZE,
  XENSTORE_SERVER_FEATURE_DOMID_ANY,
  XENSTORE_SERVER_FEATURE_ERROR,
  XENSTORE_SERVER_FEATURE_RECONNECTION,
  XENSTORE_SERVER_FEATURE_WATCHDEPTH,
} from './xenstore-layout.js';
export {
  type XenstoreClientRings,
  XenstoreControl,
  type XenstoreServerRings,
  xenstoreClientRings,
  xenstoreServerRings,
} from './xenstore-rings.js';
