export type {
  EventChannels,
  EventIteratorOptions,
  EvtchnBackend,
  NativeWake,
} from './event-channels.js';
export { evtchnErrorChannel } from './event-channels-base.js';
export { EvtchnCode, EvtchnError } from './evtchn-errors.js';
export {
  LINUX_EVTCHN_DEVICE,
  type LinuxEventChannelsOptions,
  openLinuxEventChannels,
} from './linux-event-channels.js';
export { type OpenEventChannelsOptions, openEventChannels } from './open-event-channels.js';
export {
  openSimEventChannels,
  SimEventChannels,
  type SimEventChannelsOptions,
  type SimEventHandleLike,
  type SimHypervisorLike,
} from './sim-event-channels.js';
