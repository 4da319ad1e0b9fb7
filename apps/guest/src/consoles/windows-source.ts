import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream, openSync } from 'node:fs';
import { Duplex } from 'node:stream';
import type {
  AgentConsole,
  ConsoleInfo,
  ConsoleRole,
  ConsoleSource,
  ConsoleSourceHandlers,
} from './types.js';

/** The device interface each XENCONS console PDO registers (win-xencons `xencons_device.h`). */
export const GUID_XENCONS_DEVICE = '{0D3EDD21-8EF9-4DFF-856C-8C68BF4FDCA3}';

/** One console interface as `pnputil /enum-interfaces` lists it. */
export interface XenconsInterface {
  /** `\\?\XENCONS#VEN_XN&DEV_CONSOLE#0#{0d3edd21-…}`: what CreateFile opens. */
  readonly path: string;
  /** `XENCONS\VEN_XN&DEV_CONSOLE\0`: its last part is the PDO's name (the device id, 0 = default). */
  readonly instanceId: string;
  readonly enabled: boolean;
}

/**
 * Parses `pnputil /enum-interfaces /class {GUID}` output: blocks of `Name: value` lines
 * (`Interface Path`, `Device Instance ID`, `Interface Status`), separated by blank lines.
 */
export function parsePnputilInterfaces(text: string): XenconsInterface[] {
  const out: XenconsInterface[] = [];
  for (const block of text.split(/\r?\n\s*\r?\n/)) {
    const fields = new Map<string, string>();
    for (const line of block.split(/\r?\n/)) {
      const m = /^\s*([^:]+?)\s*:\s*(.*?)\s*$/.exec(line);
      if (m) fields.set((m[1] ?? '').toLowerCase(), m[2] ?? '');
    }
    const path = fields.get('interface path');
    if (!path) continue;
    out.push({
      path,
      instanceId: fields.get('device instance id') ?? '',
      enabled: (fields.get('interface status') ?? 'enabled').toLowerCase() === 'enabled',
    });
  }
  return out;
}

/** `XENCONS\VEN_XN&DEV_CONSOLE\1` → 1; the primary's PDO is `0` (its interface name is `default`). */
export function xenconsDevid(instanceId: string): number | null {
  const last = instanceId.split('\\').pop() ?? '';
  return /^\d+$/.test(last) ? Number(last) : null;
}

export interface WindowsSourceOptions {
  /** How often to ask pnputil for console interfaces (ms, default 5000). */
  rescanMs?: number;
  /** Runs pnputil (tests). */
  enumerate?: () => Promise<string>;
  /** Opens an interface path as a stream (tests). */
  open?: (path: string) => Duplex;
}

function enumerateWithPnputil(): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'pnputil',
      ['/enum-interfaces', '/class', GUID_XENCONS_DEVICE],
      { windowsHide: true, timeout: 10_000 },
      (error, stdout) => (error ? reject(error) : resolve(stdout)),
    );
  });
}

/** CreateFile on the interface path, as xencons_monitor does; ReadFile/WriteFile move raw bytes. */
function openInterface(path: string): Duplex {
  const fd = openSync(path, 'r+');
  return Duplex.from({
    readable: createReadStream('', { fd, autoClose: false, highWaterMark: 1024 }),
    writable: createWriteStream('', { fd, autoClose: true }),
  });
}

/**
 * Windows: each PV console is a XENCONS device interface ({@link GUID_XENCONS_DEVICE}, one PDO
 * per console: the primary "default" one and one per `device/console/N`). This is the same
 * console interface as the other platforms; only discovery and opening differ. UNTESTED: no
 * Windows guest is available to this project (see the README). Discovery polls
 * `pnputil /enum-interfaces` (Windows 10 2004 and later) because Node cannot call
 * `RegisterDeviceNotification`; the console's name (`IOCTL_XENCONS_GET_NAME`) needs
 * DeviceIoControl, which Node lacks, so channels are not recognised by name here.
 */
export class WindowsConsoleSource implements ConsoleSource {
  readonly platform = 'windows';
  readonly #options: WindowsSourceOptions;
  #handlers: ConsoleSourceHandlers | null = null;
  readonly #active = new Map<string, Duplex>();
  #timer: NodeJS.Timeout | null = null;
  #scanning = false;
  #closed = false;

  constructor(options: WindowsSourceOptions = {}) {
    this.#options = options;
  }

  async start(handlers: ConsoleSourceHandlers): Promise<void> {
    this.#handlers = handlers;
    await this.#scan();
    this.#timer = setInterval(() => void this.#scan(), this.#options.rescanMs ?? 5000);
    this.#timer.unref();
  }

  rescan(): void {
    void this.#scan();
  }

  async xenstore(): Promise<null> {
    // The XENBUS store interface is kernel-only; user space has no xenstore here.
    return null;
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    for (const s of this.#active.values()) s.destroy();
    this.#active.clear();
  }

  async #scan(): Promise<void> {
    const handlers = this.#handlers;
    if (this.#scanning || this.#closed || handlers === null) return;
    this.#scanning = true;
    try {
      const text = await (this.#options.enumerate ?? enumerateWithPnputil)();
      for (const iface of parsePnputilInterfaces(text)) {
        if (!iface.enabled || this.#active.has(iface.path)) continue;
        const devid = xenconsDevid(iface.instanceId);
        const info: ConsoleInfo = {
          id: devid === null ? iface.instanceId : String(devid),
          name: devid === null ? iface.instanceId : `xencons${devid}`,
          kind: 'windows-xencons',
          devid,
          channel: null,
          primary: devid === 0,
        };
        const role = handlers.decide(info);
        if (role !== null) this.#open(iface.path, info, role);
      }
    } catch (error) {
      handlers.onProblem(`pnputil: ${(error as Error).message}`);
    } finally {
      this.#scanning = false;
    }
  }

  #open(path: string, info: ConsoleInfo, role: ConsoleRole): void {
    const handlers = this.#handlers;
    if (!handlers) return;
    let stream: Duplex;
    try {
      stream = (this.#options.open ?? openInterface)(path);
    } catch (error) {
      handlers.onProblem(`cannot open ${path}: ${(error as Error).message}`, {
        console: info.name,
      });
      return;
    }
    stream.on('error', () => {});
    this.#active.set(path, stream);
    // xencons_monitor announces itself the same way.
    stream.write('\r\n[ATTACHED]\r\n');
    const gone = new Promise<string>((resolve) => {
      const done = (why: string) => {
        if (this.#active.get(path) !== stream) return;
        this.#active.delete(path);
        resolve(why);
      };
      stream.once('end', () => done('the device went away'));
      stream.once('close', () => done('the device closed'));
      stream.once('error', (e) => done(`the device failed: ${e.message}`));
    });
    handlers.onConsole({
      ...info,
      role,
      stream,
      gone,
      describe: () => ({ device: path }),
      close: async () => {
        if (stream.writable) stream.write('\r\n[DETACHED]\r\n');
        stream.destroy();
      },
    } satisfies AgentConsole);
  }
}
