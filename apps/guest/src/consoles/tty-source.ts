import { accessSync, existsSync, constants as fsConstants, readdirSync } from 'node:fs';
import * as path from 'node:path';
import {
  findXenbusDevice,
  openXenstore,
  type XenstoreClient,
  type XsWatch,
  xenbusTransport,
} from '@xencons/xenstore';
import { ABSENT_CONSOLE_ERRORS, TtyStream } from './tty-stream.js';
import type {
  AgentConsole,
  ConsoleInfo,
  ConsoleRole,
  ConsoleSource,
  ConsoleSourceHandlers,
} from './types.js';

/** hvc_console's MAX_NR_HVC_CONSOLES. */
const MAX_HVC = 16;

export interface TtySourceOptions {
  /** Serve exactly these ttys (e.g. `/dev/ttyS0`, a pty); default: every `/dev/hvcN` that opens. */
  paths?: readonly string[];
  /** Look for consoles this often (ms, default 5000); xenstore watches add a look on every change. */
  rescanMs?: number;
  /** Watch `device/console` through `/dev/xen/xenbus` (default true when it can be opened). */
  xenbus?: boolean;
  /** Where the device nodes are (default `/dev`, tests). */
  devDir?: string;
}

/** `hvc3` → 3, else null. */
function hvcIndex(name: string): number | null {
  const m = /^hvc(\d+)$/.exec(name);
  return m ? Number(m[1]) : null;
}

/**
 * Consoles of a Linux guest: the hvc ttys of `hvc_xen` (`/dev/hvc0` is the primary console,
 * `/dev/hvc1`… the secondary consoles in the order the kernel probed them: the number is not the
 * xenbus device id), or explicit tty paths. The device nodes of all 16 hvc minors usually exist;
 * one without a console behind it fails to open with ENODEV, so a scan opens what opens. New
 * consoles are found by a periodic scan and, as root, at once through a xenstore watch on
 * `device/console` (the kernel probes a new device just after it appears). A removed console
 * hangs up: its stream ends and its session with it.
 */
export class TtyConsoleSource implements ConsoleSource {
  readonly platform: string;
  readonly #options: TtySourceOptions;
  readonly #devDir: string;
  #handlers: ConsoleSourceHandlers | null = null;
  readonly #active = new Map<string, TtyStream>();
  /** Per path: when it may be opened again, and the backoff after quick hangups. */
  readonly #backoff = new Map<string, { until: number; ms: number; openedAt: number }>();
  readonly #reported = new Map<string, string>();
  #timer: NodeJS.Timeout | null = null;
  #xs: XenstoreClient | null = null;
  #domid: number | null = null;
  #watch: XsWatch | null = null;
  #soon: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(options: TtySourceOptions = {}) {
    this.#options = options;
    this.#devDir = options.devDir ?? '/dev';
    this.platform = options.paths ? 'tty' : 'linux';
  }

  async start(handlers: ConsoleSourceHandlers): Promise<void> {
    this.#handlers = handlers;
    if (!this.#options.paths && this.#options.xenbus !== false) await this.#openXenbus();
    this.#scan();
    const every = this.#options.rescanMs ?? 5000;
    if (every > 0) {
      this.#timer = setInterval(() => this.#scan(), every);
      this.#timer.unref();
    }
  }

  async xenstore(): Promise<{ xs: XenstoreClient; domid: number } | null> {
    return this.#xs && this.#domid !== null ? { xs: this.#xs, domid: this.#domid } : null;
  }

  rescan(): void {
    // Soon rather than now: a device that just appeared is probed by the kernel right after.
    if (this.#soon || this.#closed) return;
    this.#soon = setTimeout(() => {
      this.#soon = null;
      this.#scan();
    }, 250);
    this.#soon.unref();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    if (this.#soon) clearTimeout(this.#soon);
    for (const stream of this.#active.values()) stream.destroy();
    this.#active.clear();
    await this.#watch?.close().catch(() => {});
    this.#xs?.close();
  }

  async #openXenbus(): Promise<void> {
    const device = findXenbusDevice();
    if (device === undefined) return;
    try {
      accessSync(device, fsConstants.R_OK | fsConstants.W_OK);
    } catch {
      this.#handlers?.onProblem(
        `${device} is not accessible (not root?): no xenstore watch, no out-of-band debug node; new consoles are found by the periodic scan`,
      );
      return;
    }
    try {
      const xs = await openXenstore({ transport: xenbusTransport(device), reconnect: false });
      this.#xs = xs;
      this.#domid = Number(await xs.readString('domid'));
      this.#watch = await xs.watch('device/console', { onEvent: () => this.rescan() });
    } catch (error) {
      this.#handlers?.onProblem(`xenstore through ${device}: ${(error as Error).message}`);
    }
  }

  #candidates(): string[] {
    if (this.#options.paths) return [...this.#options.paths];
    let names: string[];
    try {
      names = readdirSync(this.#devDir);
    } catch {
      return [];
    }
    return names
      .filter((n) => {
        const i = hvcIndex(n);
        return i !== null && i < MAX_HVC;
      })
      .sort((a, b) => (hvcIndex(a) ?? 0) - (hvcIndex(b) ?? 0))
      .map((n) => path.join(this.#devDir, n));
  }

  #scan(): void {
    const handlers = this.#handlers;
    if (this.#closed || handlers === null) return;
    const now = Date.now();
    for (const file of this.#candidates()) {
      if (this.#active.has(file)) continue;
      const wait = this.#backoff.get(file);
      if (wait && wait.until > now) continue;
      // As agetty names its line: the path below /dev (`hvc1`, `ttyS0`, `pts/4`).
      const name = file.startsWith('/dev/') ? file.slice('/dev/'.length) : path.basename(file);
      const index = hvcIndex(name);
      const info: ConsoleInfo = {
        id: name,
        name,
        kind: index === null ? 'tty' : 'linux-hvc',
        devid: index === 0 ? 0 : null,
        channel: null,
        primary: index === 0,
      };
      const role = handlers.decide(info);
      if (role === null) continue;
      if (!existsSync(file)) continue;
      this.#open(file, info, role);
    }
  }

  #open(file: string, info: ConsoleInfo, role: ConsoleRole): void {
    const handlers = this.#handlers;
    if (handlers === null) return;
    let stream: TtyStream;
    try {
      stream = new TtyStream(file);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      if (!ABSENT_CONSOLE_ERRORS.has(code) && this.#reported.get(file) !== code) {
        this.#reported.set(file, code);
        handlers.onProblem(`cannot open ${file}: ${(error as Error).message}`, {
          console: info.name,
        });
      }
      return;
    }
    this.#reported.delete(file);
    this.#active.set(file, stream);
    const openedAt = Date.now();
    const gone = new Promise<string>((resolve) => {
      stream.once('close', () => {
        this.#active.delete(file);
        // A console that hangs up right after it opened waits longer each time (1 s … 30 s).
        const previous = this.#backoff.get(file);
        const quick = Date.now() - openedAt < 10_000;
        const ms = quick ? Math.min((previous?.ms ?? 500) * 2, 30_000) : 0;
        this.#backoff.set(file, { until: Date.now() + ms, ms, openedAt });
        resolve(this.#closed ? 'the agent closed it' : 'the tty hung up (console removed?)');
        if (!this.#closed) this.rescan();
      });
    });
    const agentConsole: AgentConsole = {
      ...info,
      role,
      stream,
      gone,
      describe: () => ({ device: file, ...stream.stats() }),
      close: async () => {
        stream.destroy();
      },
    };
    handlers.onConsole(agentConsole);
  }
}
