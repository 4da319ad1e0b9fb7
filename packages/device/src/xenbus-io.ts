import type { XenstoreClient } from '@xencons/xenstore';
import { consoleLabel } from './device-errors.js';
import { type ConsoleSide, deviceChannels } from './diagnostics.js';
import { formatXenbusState, parseXenbusState, type XenbusState } from './xenbus-state.js';

/** Reads a `state` node (missing or garbage: Unknown). */
export async function readState(xs: XenstoreClient, dir: string): Promise<XenbusState> {
  return parseXenbusState(await xs.readStringOptional(`${dir}/state`));
}

/**
 * Writes `dir/state` in a transaction, only while `dir` exists: a plain write would create the
 * directory again after the toolstack removed the device. Returns false when `dir` is gone.
 */
export async function writeState(
  xs: XenstoreClient,
  dir: string,
  state: XenbusState,
  who: { domid: number; devid: number; side: ConsoleSide; from: XenbusState },
): Promise<boolean> {
  const written = await xs.transaction(async (tx) => {
    if (!(await tx.exists(dir))) return false;
    await tx.write(`${dir}/state`, String(state));
    return true;
  });
  if (written && deviceChannels.state.hasSubscribers) {
    deviceChannels.state.publish({
      domid: who.domid,
      devid: who.devid,
      side: who.side,
      from: who.from,
      to: state,
      line: `${consoleLabel(who.domid, who.devid)}: ${who.side} state ${formatXenbusState(who.from)} -> ${formatXenbusState(state)}`,
    });
  }
  return written;
}

/** Publishes a failed pass of a state machine on `xencons:device:error`. */
export function publishError(
  error: unknown,
  who: { domid: number; devid: number; side: ConsoleSide },
): void {
  if (!deviceChannels.error.hasSubscribers) return;
  const message = error instanceof Error ? error.message : String(error);
  deviceChannels.error.publish({
    ...who,
    error,
    line: `${consoleLabel(who.domid, who.devid)}: ${who.side}: ${message}`,
  });
}
