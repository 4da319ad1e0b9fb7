import { channel } from 'node:diagnostics_channel';

/**
 * What this package publishes (libraries never log). Every message has `domid`, `devid` and a
 * `line`: one sentence a daemon can log as it is.
 *
 * - `broken`: `{ domid, devid, side, error, line }`: the peer corrupted the ring; that console
 *   is closed, the others carry on.
 * - `state`: `{ domid, devid, side, from, to, line }`: a xenbus state this side wrote.
 * - `connectFailed`: `{ domid, devid, side, error, line }`: mapping or binding failed.
 * - `error`: `{ domid, devid, side, error, line }`: a xenstore operation of the state machine
 *   failed; it runs again on the next watch event.
 */
export const deviceChannels = {
  broken: channel('xencons:device:broken'),
  state: channel('xencons:device:state'),
  connectFailed: channel('xencons:device:connect-failed'),
  error: channel('xencons:device:error'),
} as const;

export type ConsoleSide = 'backend' | 'frontend';
