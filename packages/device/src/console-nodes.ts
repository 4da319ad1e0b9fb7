import type { XsOperations } from '@xencons/xenstore';
import { DeviceCode, DeviceError } from './device-errors.js';

/** The console `type` values a xencons backend serves unless told otherwise. */
export const DEFAULT_CONSOLE_TYPES: readonly string[] = Object.freeze(['xenconsoled', 'xencons']);

/** The `type` the toolstack helper writes for secondary consoles: ours, not QEMU's `ioemu`. */
export const XENCONS_CONSOLE_TYPE = 'xencons';

/** `LIBXL_XENCONSOLE_LIMIT`: what libxl writes to `limit` (bytes). */
export const LIBXL_CONSOLE_LIMIT = 1048576;

/** `LIBXL_XENCONSOLE_PROTOCOL`. */
export const CONSOLE_PROTOCOL = 'vt100';

/**
 * The frontend directory of console `devid` of `domid`: `/local/domain/D/console` for the
 * primary console (0), `/local/domain/D/device/console/N` for the others.
 */
export function consoleFrontendPath(domid: number, devid: number): string {
  return devid === 0
    ? `/local/domain/${domid}/console`
    : `/local/domain/${domid}/device/console/${devid}`;
}

/** The backend directory: `/local/domain/BE/backend/console/D/N`. */
export function consoleBackendPath(backendDomid: number, domid: number, devid: number): string {
  return `/local/domain/${backendDomid}/backend/console/${domid}/${devid}`;
}

/**
 * Parses `limit` as xenconsoled does (`strtoul` base 0: decimal, `0x` hex, leading-0 octal) and
 * QEMU (`%u`) agree on for well-formed values. Returns the byte count, or `null` for "no limit":
 * the node missing or empty, or 0 (xenconsoled: unbounded). Anything else (a sign, garbage,
 * trailing text, more than 2^53) throws `ERR_CONSOLE_BAD_NODE`.
 */
export function parseConsoleLimit(value: string | undefined): number | null {
  if (value === undefined) return null;
  const text = value.trim();
  if (text === '') return null;
  let n: number;
  if (/^0[xX][0-9a-fA-F]+$/.test(text)) n = Number.parseInt(text.slice(2), 16);
  else if (/^0[0-7]+$/.test(text)) n = Number.parseInt(text.slice(1), 8);
  else if (/^(0|[1-9]\d*)$/.test(text)) n = Number(text);
  else n = Number.NaN;
  if (!Number.isSafeInteger(n)) {
    throw new DeviceError(
      DeviceCode.BAD_NODE,
      `console limit ${JSON.stringify(value)} is not a byte count`,
      { details: { node: 'limit', value } },
    );
  }
  return n === 0 ? null : n;
}

/**
 * Parses an unsigned 32-bit decimal node (`port`, a secondary console's `ring-ref`), as the
 * `%u` of QEMU and the `%d`/`%u` Linux writes. Throws `ERR_CONSOLE_BAD_NODE` otherwise.
 */
export function parseU32Node(node: string, value: string): number {
  const text = value.trim();
  const n = /^\d{1,10}$/.test(text) ? Number(text) : Number.NaN;
  if (!(n >= 0 && n <= 0xffffffff)) {
    throw new DeviceError(
      DeviceCode.BAD_NODE,
      `${node} ${JSON.stringify(value)} is not an unsigned 32-bit number`,
      { details: { node, value } },
    );
  }
  return n;
}

/** Whether `type` is served by a backend configured with `types` (a missing type is). */
export function consoleTypeServed(
  type: string | undefined,
  types: readonly string[] = DEFAULT_CONSOLE_TYPES,
): boolean {
  // xenconsoled: "if type exists and is not xenconsoled, ignore the console".
  return type === undefined || types.includes(type);
}

/** The nodes of one console's frontend directory, as read (values are strings, absent = undefined). */
export interface ConsoleNodes {
  readonly domid: number;
  readonly devid: number;
  readonly frontendPath: string;
  readonly ringRef: string | undefined;
  readonly port: string | undefined;
  readonly type: string | undefined;
  readonly limit: string | undefined;
  readonly output: string | undefined;
  readonly tty: string | undefined;
  readonly name: string | undefined;
  readonly backend: string | undefined;
  readonly backendId: string | undefined;
  readonly state: string | undefined;
  readonly protocol: string | undefined;
}

/** Reads a console's frontend nodes in one pipelined batch (missing nodes are `undefined`). */
export async function readConsoleNodes(
  xs: XsOperations,
  domid: number,
  devid: number,
): Promise<ConsoleNodes> {
  const frontendPath = consoleFrontendPath(domid, devid);
  const read = (node: string) => xs.readStringOptional(`${frontendPath}/${node}`);
  const [ringRef, port, type, limit, output, tty, name, backend, backendId, state, protocol] =
    await Promise.all([
      read('ring-ref'),
      read('port'),
      read('type'),
      read('limit'),
      read('output'),
      read('tty'),
      read('name'),
      read('backend'),
      read('backend-id'),
      read('state'),
      read('protocol'),
    ]);
  return {
    domid,
    devid,
    frontendPath,
    ringRef,
    port,
    type,
    limit,
    output,
    tty,
    name,
    backend,
    backendId,
    state,
    protocol,
  };
}

/** Where a console stands, for a daemon deciding whether to serve it. */
export type ConsoleProbe =
  /** No such console (the frontend directory is missing). */
  | { readonly status: 'absent'; readonly domid: number; readonly devid: number }
  /** Another daemon's (`type` not among ours). */
  | {
      readonly status: 'foreign';
      readonly domid: number;
      readonly devid: number;
      readonly type: string;
    }
  /** Ours, with its nodes. For the primary console: `ring-ref` and `port` are both there. */
  | {
      readonly status: 'ready';
      readonly domid: number;
      readonly devid: number;
      readonly nodes: ConsoleNodes;
    }
  /** Ours, but the primary console's `ring-ref`/`port` are not written yet. */
  | {
      readonly status: 'not-ready';
      readonly domid: number;
      readonly devid: number;
      readonly nodes: ConsoleNodes;
    };

/**
 * Reads console `devid` of `domid` and says whether a backend serving `types` should take it.
 * Secondary consoles are `ready` as soon as their directory exists (the frontend publishes
 * `ring-ref` and `port` during the handshake).
 */
export async function probeConsole(
  xs: XsOperations,
  domid: number,
  devid: number,
  types: readonly string[] = DEFAULT_CONSOLE_TYPES,
): Promise<ConsoleProbe> {
  const nodes = await readConsoleNodes(xs, domid, devid);
  const base = { domid, devid };
  const { ringRef, port, type, backend, state } = nodes;
  const empty = [ringRef, port, type, backend, state].every((v) => v === undefined);
  if (empty && !(await xs.exists(nodes.frontendPath))) return { status: 'absent', ...base };
  if (!consoleTypeServed(nodes.type, types)) {
    return { status: 'foreign', ...base, type: nodes.type ?? '' };
  }
  if (devid === 0 && (nodes.ringRef === undefined || nodes.port === undefined)) {
    return { status: 'not-ready', ...base, nodes };
  }
  return { status: 'ready', ...base, nodes };
}

/** The secondary consoles (`device/console/N`) a domain has, by device id, ascending. */
export async function listSecondaryConsoles(xs: XsOperations, domid: number): Promise<number[]> {
  const names = await xs.directory(`/local/domain/${domid}/device/console`).catch((err) => {
    if ((err as { code?: unknown }).code === 'ENOENT') return [] as string[];
    throw err;
  });
  return names
    .filter((n) => /^[1-9]\d{0,4}$/.test(n))
    .map(Number)
    .sort((a, b) => a - b);
}

/** Throws unless `devid` can be a console device id (0 .. 65535). */
export function checkDevid(devid: number, what = 'devid'): void {
  if (!Number.isInteger(devid) || devid < 0 || devid > 0xffff) {
    throw new DeviceError(
      DeviceCode.DEVID,
      `${what} must be an integer in [0, 65535], got ${devid}`,
      {
        details: { devid },
      },
    );
  }
}
