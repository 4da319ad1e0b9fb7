import { XenconsError } from '@xencons/errors';
import {
  type ForeignMapping,
  GNTTAB_RESERVED_CONSOLE,
  type Gnttab,
  type MapOptions,
} from './gnttab.js';
import { GnttabError } from './gnttab-errors.js';

export interface PrimaryConsoleMapping {
  readonly mapping: ForeignMapping;
  /** How it was mapped: grant 0 (gntdev) or the `console/ring-ref` frame (privcmd). */
  readonly via: 'grant' | 'frame';
  /** Why grant 0 did not map, when the frame was used. */
  readonly grantError: GnttabError | null;
}

/**
 * Maps a guest's primary console page the way xenconsoled does: grant 0
 * (`GNTTAB_RESERVED_CONSOLE`, which the domain builder grants to the console domain), and if
 * that fails, the frame number the toolstack wrote to `/local/domain/<domid>/console/ring-ref`
 * (a frame, not a grant ref, for the primary console; mapping it is privileged). Without
 * `ringRef` only grant 0 is tried. When both fail, the frame's error is thrown with the grant's
 * as `details.grantError`.
 */
export async function mapPrimaryConsole(
  gnttab: Gnttab,
  domid: number,
  ringRef?: number | null,
  options: MapOptions = {},
): Promise<PrimaryConsoleMapping> {
  let grantError: GnttabError;
  try {
    const mapping = await gnttab.map(domid, [GNTTAB_RESERVED_CONSOLE], options);
    return { mapping, via: 'grant', grantError: null };
  } catch (err) {
    if (!(err instanceof GnttabError)) throw err;
    grantError = err;
  }
  if (ringRef === undefined || ringRef === null) throw grantError;
  try {
    const mapping = await gnttab.mapFrames(domid, [ringRef], options);
    return { mapping, via: 'frame', grantError };
  } catch (err) {
    if (!(err instanceof GnttabError)) throw err;
    throw new GnttabError(
      err.code,
      `console page of domain ${domid}: grant 0: ${grantError.message}; frame ${ringRef}: ${err.message}`,
      { cause: err, details: { ...err.details, grantError } },
    );
  }
}

/** Parses a `console/ring-ref` value (a decimal frame number) or throws ERR_INVALID_ARG. */
export function parseRingRef(value: string): number {
  const n = /^\s*\d+\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n)) {
    throw new XenconsError(
      'ERR_INVALID_ARG',
      `ring-ref must be a decimal frame number, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}
