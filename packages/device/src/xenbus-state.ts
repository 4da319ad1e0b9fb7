/**
 * `enum xenbus_state` (`io/xenbus.h`): the number a device's `state` node holds, in decimal, on
 * both the frontend and the backend side.
 */
export const XenbusState = {
  Unknown: 0,
  Initialising: 1,
  InitWait: 2,
  Initialised: 3,
  Connected: 4,
  Closing: 5,
  Closed: 6,
  Reconfiguring: 7,
  Reconfigured: 8,
} as const;
export type XenbusState = (typeof XenbusState)[keyof typeof XenbusState];

const NAMES = [
  'Unknown',
  'Initialising',
  'InitWait',
  'Initialised',
  'Connected',
  'Closing',
  'Closed',
  'Reconfiguring',
  'Reconfigured',
] as const;

/** `Connected`, `Closing`…; `7?` style for a number outside the enum. */
export function xenbusStateName(state: number): string {
  return NAMES[state] ?? `${state}?`;
}

/** `4 (Connected)`: how messages show a state. */
export function formatXenbusState(state: number): string {
  return `${state} (${xenbusStateName(state)})`;
}

/**
 * Parses a `state` node as Linux's `xenbus_read_driver_state` does: a missing node, or anything
 * that is not one of the numbers 0-8 (the node is writable by the other side, so garbage is
 * expected), reads as `Unknown` (0).
 */
export function parseXenbusState(value: string | undefined): XenbusState {
  if (value === undefined) return XenbusState.Unknown;
  const text = value.trim();
  if (!/^\d{1,3}$/.test(text)) return XenbusState.Unknown;
  const n = Number(text);
  return n <= XenbusState.Reconfigured ? (n as XenbusState) : XenbusState.Unknown;
}
