import { EventEmitter } from 'node:events';
import type { SharedPages } from '@xencons/gnttab';
import { consoleFrontendRings } from '@xencons/ring';
import type { XsWatch } from '@xencons/xenstore';
import type { ConsoleDeps } from './backend-deps.js';
import { connectError } from './connect-error.js';
import { checkDevid, consoleFrontendPath, parseU32Node } from './console-nodes.js';
import { ConsoleStream } from './console-stream.js';
import { abortError, consoleLabel, DeviceCode, DeviceError } from './device-errors.js';
import { KickLoop } from './kick-loop.js';
import { publishError, readState, writeState } from './xenbus-io.js';
import { frontendStep } from './xenbus-machine.js';
import { formatXenbusState, XenbusState } from './xenbus-state.js';

export interface OpenSecondaryConsoleOptions extends ConsoleDeps {
  /** Our own domain (the guest). */
  readonly domid: number;
  /** The device id the toolstack gave the console (`device/console/N`, N ≥ 1). */
  readonly devid: number;
  /** Gives up waiting for the backend (the console is then closed again). */
  readonly signal?: AbortSignal;
  /**
   * How long `close()` waits for the backend to acknowledge Closing before it lets go anyway
   * (ms, default 5000). Letting go early is safe: a grant the backend still maps stays valid
   * until it unmaps.
   */
  readonly closeTimeout?: number;
}

export type SecondaryConsoleFrontendEvents = {
  /** We wrote our xenbus `state`. */
  state: [from: XenbusState, to: XenbusState];
  /** The console is closed: `closed` by us, or by the backend (Closing/Closed, device removed). */
  close: [by: 'guest' | 'backend'];
};

interface Published {
  readonly shared: SharedPages;
  readonly port: number;
  readonly stream: ConsoleStream;
}

const MAX_STEPS = 16;

/**
 * The guest's end of a secondary console (`device/console/N`), the way Linux `hvc_xen` drives
 * it ({@link frontendStep}, xen-protocols.md §2.4): a page shared with the backend domain
 * (`ring-ref` is its grant ref), an unbound port for it (`port`), both written in one
 * transaction, then Initialised, then Connected once the backend is. `stream` is the console:
 * writes are guest output, reads are input from dom0.
 *
 * `close()` is the guest removing the console: Closing, wait for the backend, release, Closed.
 * The backend closing it ends `stream` and emits `'close'` with `'backend'`. Open it again with
 * {@link openSecondaryConsole}: the frontend goes back to Initialising and the backend follows.
 */
export class SecondaryConsoleFrontend extends EventEmitter<SecondaryConsoleFrontendEvents> {
  readonly domid: number;
  readonly devid: number;
  readonly frontendPath: string;
  readonly backendPath: string;
  readonly backendDomid: number;
  readonly #deps: ConsoleDeps;
  readonly #loop: KickLoop;
  readonly #closeTimeout: number;
  #watch: XsWatch | null = null;
  #want: 'connect' | 'close' = 'connect';
  #state: XenbusState = XenbusState.Unknown;
  #backendState: XenbusState = XenbusState.Unknown;
  #published: Published | null = null;
  #stream: ConsoleStream | null = null;
  #closedBy: 'guest' | 'backend' | null = null;
  #connected = false;
  #settle: { resolve: () => void; reject: (error: Error) => void } | null = null;
  #closeTimer: NodeJS.Timeout | null = null;
  #closing: Promise<void> | null = null;
  #done: (() => void) | null = null;

  /** @internal Use {@link openSecondaryConsole}. */
  constructor(options: OpenSecondaryConsoleOptions, backendPath: string, backendDomid: number) {
    super();
    this.domid = options.domid;
    this.devid = options.devid;
    this.frontendPath = consoleFrontendPath(this.domid, this.devid);
    this.backendPath = backendPath;
    this.backendDomid = backendDomid;
    this.#deps = { xs: options.xs, evtchn: options.evtchn, gnttab: options.gnttab };
    this.#closeTimeout = options.closeTimeout ?? 5000;
    this.#loop = new KickLoop(
      () => this.#pass(),
      (error) => {
        publishError(error, this.#who());
        // A failure before we connected fails the open; later ones wait for the next event.
        this.#settle?.reject(error as Error);
      },
    );
  }

  /** `domain 5 console 1`. */
  get label(): string {
    return consoleLabel(this.domid, this.devid);
  }

  /** Our xenbus state, as last written. */
  get state(): XenbusState {
    return this.#state;
  }

  get backendState(): XenbusState {
    return this.#backendState;
  }

  /** The console's bytes: write guest output, read dom0's input. */
  get stream(): ConsoleStream {
    if (this.#stream === null) {
      throw new DeviceError(DeviceCode.NOT_READY, `${this.label}: not connected yet`, {
        details: { domid: this.domid, devid: this.devid },
      });
    }
    return this.#stream;
  }

  /** Who closed it, once closed. */
  get closedBy(): 'guest' | 'backend' | null {
    return this.#closedBy;
  }

  /** @internal Runs the connect handshake; resolves once Connected. */
  async connect(signal?: AbortSignal): Promise<void> {
    const settled = new Promise<void>((resolve, reject) => {
      this.#settle = { resolve, reject };
    });
    const onAbort = () => {
      this.#settle?.reject(abortError(`${this.label}: waiting for the backend`, signal!));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (signal?.aborted) throw abortError(`${this.label}: waiting for the backend`, signal);
      this.#watch = await this.#deps.xs.watch(this.backendPath, {
        onEvent: () => this.#loop.kick(),
      });
      this.#loop.kick();
      await settled;
    } catch (error) {
      await this.close();
      throw error;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.#settle = null;
    }
  }

  /**
   * Removes the console as the guest: Closing, wait (at most `closeTimeout`) for the backend to
   * close, end the grant, unbind the port, Closed. `stream` ends. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#closedBy !== null) return;
      this.#want = 'close';
      const done = new Promise<void>((resolve) => {
        this.#done = resolve;
      });
      this.#closeTimer = setTimeout(() => {
        this.#closeTimer = null;
        void this.#forceRelease();
      }, this.#closeTimeout);
      this.#loop.kick();
      if (this.#published === null && this.#watch === null) this.#finish();
      await done;
    })();
    return this.#closing;
  }

  #who() {
    return { domid: this.domid, devid: this.devid, side: 'frontend' as const };
  }

  async #pass(): Promise<void> {
    const { xs } = this.#deps;
    for (let i = 0; i < MAX_STEPS; i++) {
      if (this.#closedBy !== null) return;
      const [frontend, backend] = await Promise.all([
        readState(xs, this.frontendPath),
        readState(xs, this.backendPath),
      ]);
      this.#state = frontend;
      this.#backendState = backend;
      const step = frontendStep({
        frontend,
        backend,
        want: this.#want,
        published: this.#published !== null,
      });
      switch (step.action) {
        case 'wait':
          return;
        case 'set':
          await this.#write(step.state);
          break;
        case 'publish':
          await this.#publish();
          break;
        case 'connected':
          await this.#write(XenbusState.Connected);
          this.#connected = true;
          this.#settle?.resolve();
          break;
        case 'release': {
          const by = this.#want === 'close' ? 'guest' : 'backend';
          await this.#release();
          // The device may be gone already (removed by the toolstack, the domain torn down).
          await this.#write(XenbusState.Closed).catch(() => {});
          if (step.reason === 'refused' && !this.#connected) {
            this.#settle?.reject(
              new DeviceError(
                DeviceCode.REFUSED,
                `${this.label}: the backend closed the console (state ${formatXenbusState(backend)}) before it connected`,
                { details: { domid: this.domid, devid: this.devid, backendState: backend } },
              ),
            );
          }
          this.#finish(by);
          return;
        }
        case 'done':
          this.#finish('guest');
          return;
      }
    }
  }

  async #write(state: XenbusState): Promise<void> {
    const from = this.#state;
    const written = await writeState(this.#deps.xs, this.frontendPath, state, {
      ...this.#who(),
      from,
    });
    if (!written) {
      throw new DeviceError(
        DeviceCode.NOT_READY,
        `${this.label}: the device directory ${this.frontendPath} is gone`,
        { details: { domid: this.domid, devid: this.devid } },
      );
    }
    this.#state = state;
    if (from !== state) this.emit('state', from, state);
  }

  async #publish(): Promise<void> {
    const { xs, evtchn, gnttab } = this.#deps;
    const { domid, devid, label, backendDomid } = this;
    let shared: SharedPages;
    try {
      shared = await gnttab.share(backendDomid);
    } catch (cause) {
      throw connectError(label, 'share a page', cause, { domid }, devid, 'frontend');
    }
    let port: number;
    try {
      port = await evtchn.allocUnbound(backendDomid);
    } catch (cause) {
      await shared.end().catch(() => {});
      throw connectError(label, 'allocate an event channel', cause, { domid }, devid, 'frontend');
    }
    const rings = consoleFrontendRings(shared.buffer);
    const stream = new ConsoleStream({
      domid,
      devid,
      side: 'frontend',
      rx: rings.in,
      tx: rings.out,
      evtchn,
      port,
      onBroken: () => {
        // The backend corrupted our ring: take the console down as if it had closed.
        if (this.#closedBy === null) void this.close();
      },
    });
    this.#published = { shared, port, stream };
    this.#stream = stream;
    const ref = shared.refs[0]!;
    const path = this.frontendPath;
    // hvc_xen: ring-ref (%d) and port (%u) in one transaction, retried on EAGAIN.
    const written = await xs.transaction(async (tx) => {
      if (!(await tx.exists(path))) return false;
      await tx.write(`${path}/ring-ref`, String(ref));
      await tx.write(`${path}/port`, String(port));
      return true;
    });
    if (!written) {
      throw new DeviceError(
        DeviceCode.NOT_READY,
        `${label}: the device directory ${path} is gone`,
        {
          details: { domid, devid },
        },
      );
    }
    await this.#write(XenbusState.Initialised);
    stream.pump();
  }

  async #release(): Promise<void> {
    const published = this.#published;
    if (published === null) return;
    this.#published = null;
    published.stream.hangup();
    try {
      await this.#deps.evtchn.unbind(published.port);
    } catch {
      // Gone with the handle.
    }
    await published.shared.end().catch(() => {});
  }

  /** The backend did not acknowledge in time: let go and say Closed. */
  async #forceRelease(): Promise<void> {
    if (this.#closedBy !== null) return;
    this.#loop.stop();
    await this.#loop.idle();
    if (this.#closedBy !== null) return;
    await this.#release();
    await this.#write(XenbusState.Closed).catch(() => {});
    this.#finish('guest');
  }

  #finish(by: 'guest' | 'backend' = 'guest'): void {
    if (this.#closedBy !== null) return;
    this.#closedBy = by;
    this.#loop.stop();
    if (this.#closeTimer !== null) clearTimeout(this.#closeTimer);
    this.#closeTimer = null;
    const watch = this.#watch;
    this.#watch = null;
    void watch?.close().catch(() => {});
    this.#settle?.reject(
      new DeviceError(DeviceCode.REFUSED, `${this.label}: closed before it connected`, {
        details: { domid: this.domid, devid: this.devid },
      }),
    );
    this.#done?.();
    this.emit('close', by);
  }
}

/**
 * Connects secondary console `devid` as the guest (the frontend): reads `backend` and
 * `backend-id` from `device/console/N`, runs the handshake and resolves once the backend is
 * Connected. `ERR_CONSOLE_NOT_READY` when the toolstack has not made the device,
 * `ERR_CONSOLE_REFUSED` when the backend closes instead of connecting, `ERR_CONSOLE_ABORTED` when
 * `signal` fires first (the backend may not run yet: the frontend waits for it).
 */
export async function openSecondaryConsole(
  options: OpenSecondaryConsoleOptions,
): Promise<SecondaryConsoleFrontend> {
  const { xs, domid, devid } = options;
  checkDevid(devid);
  if (devid === 0) {
    throw new DeviceError(
      DeviceCode.DEVID,
      `${consoleLabel(domid, 0)} is the primary console: it has no xenbus handshake`,
      { details: { domid, devid } },
    );
  }
  const path = consoleFrontendPath(domid, devid);
  const [backendPath, backendId] = await Promise.all([
    xs.readStringOptional(`${path}/backend`),
    xs.readStringOptional(`${path}/backend-id`),
  ]);
  if (backendPath === undefined || backendId === undefined) {
    throw new DeviceError(
      DeviceCode.NOT_READY,
      `${consoleLabel(domid, devid)}: no device ${path} (backend and backend-id are written by the toolstack)`,
      { details: { domid, devid, path } },
    );
  }
  let backendDomid: number;
  try {
    backendDomid = parseU32Node('backend-id', backendId);
  } catch (cause) {
    throw new DeviceError(
      DeviceCode.BAD_NODE,
      `${consoleLabel(domid, devid)}: ${(cause as Error).message}`,
      {
        cause,
        details: { domid, devid },
      },
    );
  }
  if (!backendPath.startsWith('/')) {
    throw new DeviceError(
      DeviceCode.BAD_NODE,
      `${consoleLabel(domid, devid)}: backend ${JSON.stringify(backendPath)} is not a path`,
      { details: { domid, devid } },
    );
  }
  const frontend = new SecondaryConsoleFrontend(options, backendPath, backendDomid);
  await frontend.connect(options.signal);
  return frontend;
}
