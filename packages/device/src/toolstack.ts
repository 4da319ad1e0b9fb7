import type { XenstoreClient, XsOperations } from '@xencons/xenstore';
import {
  CONSOLE_PROTOCOL,
  checkDevid,
  consoleBackendPath,
  consoleFrontendPath,
  LIBXL_CONSOLE_LIMIT,
  XENCONS_CONSOLE_TYPE,
} from './console-nodes.js';
import { abortError, consoleLabel, DeviceCode, DeviceError } from './device-errors.js';
import { parseXenbusState, XenbusState } from './xenbus-state.js';

/**
 * The highest secondary console device id a Linux guest can use: `hvc_xen` takes only the last
 * character of `device/console/N` as the id (`nodename[strlen - 1] - '0'`), so 10 would be 0.
 */
export const LINUX_MAX_CONSOLE_DEVID = 9;

export interface CreateSecondaryConsoleOptions {
  /** The guest. */
  readonly domid: number;
  /** Device id; default the lowest free one from 1. */
  readonly devid?: number;
  /** The domain that serves it (default 0). */
  readonly backendDomid?: number;
  /** Frontend `type` (default `xencons`: ours; `ioemu` would be QEMU's). */
  readonly type?: string;
  /** A channel name (`name`, on both sides); a plain console has none. */
  readonly name?: string;
  /** Frontend `output` (default `pty`). */
  readonly output?: string;
  /** Frontend `limit` in bytes (default libxl's 1048576); null writes none. */
  readonly limit?: number | null;
  /**
   * The guest runs Linux `hvc_xen` (default true): device ids above
   * {@link LINUX_MAX_CONSOLE_DEVID} are refused with `ERR_CONSOLE_DEVID`. Set false only for
   * frontends that parse the whole id (this package's, win-xencons).
   */
  readonly linuxGuest?: boolean;
}

/** Where a secondary console lives in xenstore. */
export interface SecondaryConsoleNodes {
  readonly domid: number;
  readonly devid: number;
  readonly backendDomid: number;
  readonly frontendPath: string;
  readonly backendPath: string;
}

const perms = (owner: number, reader: number) => [`n${owner}`, `r${reader}`];

/**
 * Creates the nodes of a secondary console as libxl does (`libxl__device_console_add`), in one
 * transaction retried on EAGAIN, so the guest's frontend can connect and a backend can serve it:
 *
 * | node | value | perms |
 * |---|---|---|
 * | `/local/domain/D/device/console/N` | | `nD rBE` (the guest writes `ring-ref`, `port` here) |
 * | `…/backend`, `backend-id`, `state`, `protocol` | backend path, BE, `1`, `vt100` | `nD rBE` |
 * | `…/limit`, `type`, `output`, `tty`, `name` | 1048576, `xencons`, `pty`, empty, optional | `nBE rD` |
 * | `/local/domain/BE/backend/console/D/N` and `frontend`, `frontend-id`, `online`, `state`, `protocol`, `name` | …, D, `1`, `1`, `vt100` | `nBE rD` |
 *
 * `ERR_CONSOLE_EXISTS` if the device is there already; `ERR_CONSOLE_DEVID` for 0, for a Linux
 * guest's id above 9, or when no id is free.
 */
export async function createSecondaryConsole(
  xs: XenstoreClient,
  options: CreateSecondaryConsoleOptions,
): Promise<SecondaryConsoleNodes> {
  const { domid } = options;
  const backendDomid = options.backendDomid ?? 0;
  const linux = options.linuxGuest ?? true;
  const maxDevid = linux ? LINUX_MAX_CONSOLE_DEVID : 0xffff;
  if (options.devid !== undefined) {
    checkDevid(options.devid);
    checkSecondaryDevid(domid, options.devid, linux);
  }
  return xs.transaction(async (tx) => {
    const devid = options.devid ?? (await firstFreeDevid(tx, domid, maxDevid));
    const frontendPath = consoleFrontendPath(domid, devid);
    const backendPath = consoleBackendPath(backendDomid, domid, devid);
    if ((await tx.exists(frontendPath)) || (await tx.exists(backendPath))) {
      throw new DeviceError(DeviceCode.EXISTS, `${consoleLabel(domid, devid)} exists already`, {
        details: { domid, devid, frontendPath, backendPath },
      });
    }
    const front = perms(domid, backendDomid);
    const ro = perms(backendDomid, domid);
    const write = async (node: string, value: string, acl: string[]) => {
      await tx.write(node, value);
      await tx.setPerms(node, acl);
    };
    await tx.mkdir(frontendPath);
    await tx.setPerms(frontendPath, front);
    await write(`${frontendPath}/backend`, backendPath, front);
    await write(`${frontendPath}/backend-id`, String(backendDomid), front);
    await write(`${frontendPath}/state`, String(XenbusState.Initialising), front);
    await write(`${frontendPath}/protocol`, CONSOLE_PROTOCOL, front);
    const limit = options.limit === undefined ? LIBXL_CONSOLE_LIMIT : options.limit;
    if (limit !== null) await write(`${frontendPath}/limit`, String(limit), ro);
    await write(`${frontendPath}/type`, options.type ?? XENCONS_CONSOLE_TYPE, ro);
    await write(`${frontendPath}/output`, options.output ?? 'pty', ro);
    await write(`${frontendPath}/tty`, '', ro);
    if (options.name !== undefined) await write(`${frontendPath}/name`, options.name, ro);

    const parent = `/local/domain/${backendDomid}/backend/console/${domid}`;
    if (!(await tx.exists(parent))) {
      await tx.mkdir(parent);
      await tx.setPerms(parent, ro);
    }
    await tx.mkdir(backendPath);
    await tx.setPerms(backendPath, ro);
    await write(`${backendPath}/frontend`, frontendPath, ro);
    await write(`${backendPath}/frontend-id`, String(domid), ro);
    await write(`${backendPath}/online`, '1', ro);
    await write(`${backendPath}/state`, String(XenbusState.Initialising), ro);
    await write(`${backendPath}/protocol`, CONSOLE_PROTOCOL, ro);
    if (options.name !== undefined) await write(`${backendPath}/name`, options.name, ro);
    return { domid, devid, backendDomid, frontendPath, backendPath };
  });
}

export interface RemoveSecondaryConsoleOptions {
  readonly domid: number;
  readonly devid: number;
  readonly backendDomid?: number;
  /** How long to wait for the backend to reach Closed before removing anyway (ms, default 10000, libxl's). */
  readonly timeout?: number;
  readonly signal?: AbortSignal;
}

/**
 * Removes a secondary console as libxl removes a device: `online` = 0 and backend `state` =
 * Closing in a transaction, then wait until the backend is Closed (it closes the frontend first),
 * then remove both directories. Resolves `{ clean }`: false when the backend did not reach Closed
 * in time (nothing served it) and the nodes were removed anyway.
 */
export async function removeSecondaryConsole(
  xs: XenstoreClient,
  options: RemoveSecondaryConsoleOptions,
): Promise<{ clean: boolean }> {
  const { domid, devid } = options;
  const backendDomid = options.backendDomid ?? 0;
  const frontendPath = consoleFrontendPath(domid, devid);
  const backendPath = consoleBackendPath(backendDomid, domid, devid);
  const statePath = `${backendPath}/state`;
  const closed = async () => {
    const value = await xs.readStringOptional(statePath);
    return value === undefined || parseXenbusState(value) === XenbusState.Closed;
  };
  const started = await xs.transaction(async (tx) => {
    if (!(await tx.exists(backendPath))) return false;
    await tx.write(`${backendPath}/online`, '0');
    const state = parseXenbusState(await tx.readStringOptional(statePath));
    if (state !== XenbusState.Closed) await tx.write(statePath, String(XenbusState.Closing));
    return true;
  });
  let clean = true;
  if (started) {
    clean = await waitFor(xs, backendPath, closed, options.timeout ?? 10_000, options.signal);
  }
  await xs.transaction(async (tx) => {
    await tx.rm(frontendPath).catch(ignoreEnoent);
    await tx.rm(backendPath).catch(ignoreEnoent);
  });
  return { clean };
}

function ignoreEnoent(error: unknown): void {
  if ((error as { code?: unknown }).code !== 'ENOENT') throw error;
}

/** Watches `path` until `done()` holds (true) or `timeout` ms pass (false). */
async function waitFor(
  xs: XenstoreClient,
  path: string,
  done: () => Promise<boolean>,
  timeout: number,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  if (signal?.aborted) throw abortError(`waiting for ${path}`, signal);
  let wake: (() => void) | null = null;
  const watch = await xs.watch(path, { onEvent: () => wake?.() });
  const deadline = Date.now() + timeout;
  try {
    for (;;) {
      const woken = new Promise<void>((resolve) => {
        wake = resolve;
      });
      if (await done()) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      let onAbort: (() => void) | undefined;
      await Promise.race([
        woken,
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, left);
        }),
        new Promise<void>((_, reject) => {
          onAbort = () => reject(abortError(`waiting for ${path}`, signal!));
          signal?.addEventListener('abort', onAbort, { once: true });
        }),
      ]).finally(() => {
        clearTimeout(timer);
        if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
      });
    }
  } finally {
    await watch.close().catch(() => {});
  }
}

/** Throws `ERR_CONSOLE_DEVID` for 0 (the primary console) or, for Linux, an id above 9. */
export function checkSecondaryDevid(domid: number, devid: number, linuxGuest = true): void {
  if (devid === 0) {
    throw new DeviceError(
      DeviceCode.DEVID,
      `${consoleLabel(domid, 0)} is the primary console, not a device/console/N`,
      { details: { domid, devid } },
    );
  }
  if (linuxGuest && devid > LINUX_MAX_CONSOLE_DEVID) {
    throw new DeviceError(
      DeviceCode.DEVID,
      `${consoleLabel(domid, devid)}: Linux hvc_xen reads only the last digit of the device id, so a Linux guest's secondary consoles are 1-${LINUX_MAX_CONSOLE_DEVID} (pass linuxGuest: false for other frontends)`,
      { details: { domid, devid, max: LINUX_MAX_CONSOLE_DEVID } },
    );
  }
}

async function firstFreeDevid(tx: XsOperations, domid: number, max: number): Promise<number> {
  const taken = new Set(
    await tx.directory(`/local/domain/${domid}/device/console`).catch((error: unknown) => {
      if ((error as { code?: unknown }).code === 'ENOENT') return [] as string[];
      throw error;
    }),
  );
  for (let devid = 1; devid <= max; devid++) if (!taken.has(String(devid))) return devid;
  throw new DeviceError(
    DeviceCode.DEVID,
    `domain ${domid}: no free secondary console id in 1-${max}`,
    { details: { domid, max } },
  );
}
