import { loadNative, type NativeBinding, nativeUnavailableReason } from '@xencons/native';
import { LoginShellError } from './errors.js';

/** The native core, or a typed error saying why it is missing (ptys and accounts need it). */
export function native(): NativeBinding {
  const n = loadNative();
  if (n === null) {
    throw new LoginShellError(
      'ERR_NATIVE_UNAVAILABLE',
      `login-shell needs the native core for ptys and accounts: ${nativeUnavailableReason()}`,
    );
  }
  return n;
}
