import { isXenconsError } from '@xencons/errors';
import { DeviceCode, DeviceError } from './device-errors.js';
import { type ConsoleSide, deviceChannels } from './diagnostics.js';

/** ERR_CONSOLE_CONNECT for `what` failing, published on `xencons:device:connect-failed`. */
export function connectError(
  label: string,
  what: string,
  cause: unknown,
  details: Record<string, unknown> & { domid: number },
  devid = 0,
  side: ConsoleSide = 'backend',
): DeviceError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  const error = new DeviceError(DeviceCode.CONNECT, `${label}: could not ${what}: ${reason}`, {
    cause,
    details: {
      ...details,
      devid,
      side,
      ...(isXenconsError(cause) ? { causeCode: cause.code } : {}),
    },
  });
  if (deviceChannels.connectFailed.hasSubscribers) {
    deviceChannels.connectFailed.publish({
      domid: details.domid,
      devid,
      side,
      error,
      line: error.message,
    });
  }
  return error;
}
