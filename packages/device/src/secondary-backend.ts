import { EventEmitter } from 'node:events';
import type { EventChannels } from '@xencons/evtchn';
import type { ForeignMapping } from '@xencons/gnttab';
import { consoleBackendRings } from '@xencons/ring';
import type { XsWatch } from '@xencons/xenstore';
import type { ConsoleDeps } from './backend-deps.js';
import { connectError } from './connect-error.js';
import {
  checkDevid,
  consoleBackendPath,
  consoleFrontendPath,
  consoleTypeServed,
  DEFAULT_CONSOLE_TYPES,
  parseConsoleLimit,
  parseU32Node,
  readConsoleNodes,
} from './console-nodes.js';
import { ConsoleStream } from './console-stream.js';
import { consoleLabel, DeviceCode, DeviceError } from './device-errors.js';
import { KickLoop } from './kick-loop.js';
import { openPumpHandle } from './pump-handle.js';
import { publishError, readState, writeState } from './xenbus-io.js';
import { backendStep } from './xenbus-machine.js';
import { parseXenbusState, XenbusState } from './xenbus-state.js';

export interface ServeSecondaryConsoleOptions extends ConsoleDeps {
  /** The guest. */
  readonly domid: number;
  /** The console's device id, 1 or more (`device/console/N`). */
  readonly devid: number;
  /** Our own domain, whose `backend/console/...` directory we serve (default: gnttab's, else 0). */
  readonly backendDomid?: number;
  /** The `type` values we serve (default `xenconsoled`, `xencons`); a missing `type` is served. */
  readonly types?: readonly string[];
}

export type SecondaryConsoleBackendEvents = {
  /** The frontend connected: a fresh stream for this connection. */
  connect: [stream: ConsoleStream];
  /** The connection's stream was hung up (frontend closing, device removed, `close()`). */
  disconnect: [stream: ConsoleStream];
  /** We wrote our xenbus `state`. */
  state: [from: XenbusState, to: XenbusState];
  /** The backend stopped serving: the device was removed or taken offline, or `close()`. */
  close: [];
};

interface Connection {
  readonly stream: ConsoleStream;
  readonly mapping: ForeignMapping;
  readonly port: number;
  /** The connection's own event-channel handle when a native pump serves it (else null). */
  readonly own: EventChannels | null;
  hungUp: boolean;
}

/** More steps than this in one pass means the other side keeps changing its mind: wait for it. */
const MAX_STEPS = 16;

/**
 * The backend of a secondary console (`device/console/N`, N ≥ 1): follows the frontend through
 * the xenbus handshake ({@link backendStep}, xen-protocols.md §2.4) for as many connections as
 * the guest makes. Each connection is a new {@link ConsoleStream} (`'connect'`), hung up when the
 * frontend closes (`'disconnect'`); the guest may connect again afterwards.
 *
 * It watches the frontend directory and its own backend directory; watch events are hints, so
 * every event re-reads the states and acts until there is nothing to do. A frontend that publishes
 * a bad `ring-ref`/`port`, or whose grant does not map, gets `Closing` (published on
 * `xencons:device:connect-failed`); one that corrupts its ring gets `ERR_CONSOLE_BROKEN` on the
 * stream and `Closing`. Either way it may reinitialise and try again; other consoles are not
 * affected.
 */
export class SecondaryConsoleBackend extends EventEmitter<SecondaryConsoleBackendEvents> {
  readonly domid: number;
  readonly devid: number;
  readonly backendDomid: number;
  readonly frontendPath: string;
  readonly backendPath: string;
  /** Where a backend publishes its pty for `xenconsole --num N`: `<frontendPath>/tty`. */
  readonly ttyPath: string;
  /** `limit` of the current or last connection (null: absent, 0 or not a number). */
  limit: number | null = null;
  /** `name` (a channel's name) of the current or last connection. */
  name: string | undefined;
  /** Connections made so far. */
  connections = 0;
  readonly #deps: ConsoleDeps;
  readonly #types: readonly string[];
  readonly #loop: KickLoop;
  readonly #watches: XsWatch[] = [];
  #state: XenbusState = XenbusState.Unknown;
  #frontendState: XenbusState = XenbusState.Unknown;
  #conn: Connection | null = null;
  #broken = false;
  #closed = false;

  /** @internal Use {@link serveSecondaryConsole}. */
  constructor(options: ServeSecondaryConsoleOptions) {
    super();
    this.domid = options.domid;
    this.devid = options.devid;
    this.backendDomid = options.backendDomid ?? options.gnttab.domid ?? 0;
    this.frontendPath = consoleFrontendPath(this.domid, this.devid);
    this.backendPath = consoleBackendPath(this.backendDomid, this.domid, this.devid);
    this.ttyPath = `${this.frontendPath}/tty`;
    this.#deps = { xs: options.xs, evtchn: options.evtchn, gnttab: options.gnttab };
    this.#types = options.types ?? DEFAULT_CONSOLE_TYPES;
    this.#loop = new KickLoop(
      () => this.#pass(),
      (error) => publishError(error, this.#who()),
    );
  }

  /** `domain 5 console 1`. */
  get label(): string {
    return consoleLabel(this.domid, this.devid);
  }

  /** Our xenbus state, as last read or written. */
  get state(): XenbusState {
    return this.#state;
  }

  /** The frontend's xenbus state, as last read. */
  get frontendState(): XenbusState {
    return this.#frontendState;
  }

  /** The current connection's stream (null between connections). */
  get stream(): ConsoleStream | null {
    return this.#conn?.stream ?? null;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** @internal Registers the watches and runs the first pass. */
  async start(): Promise<void> {
    const onEvent = () => this.#loop.kick();
    try {
      this.#watches.push(await this.#deps.xs.watch(this.backendPath, { onEvent }));
      this.#watches.push(await this.#deps.xs.watch(this.frontendPath, { onEvent }));
    } catch (error) {
      await this.close();
      throw error;
    }
    this.#loop.kick();
    await this.#loop.idle();
  }

  /**
   * Stops serving without touching xenstore: hangs up the current stream, unbinds and unmaps.
   * The guest's frontend stays as it is, so a backend started later (a restarted daemon) picks
   * the connection up again. To take the device away from the guest, remove it with the
   * toolstack helper ({@link removeSecondaryConsole}). Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#loop.stop();
    await this.#loop.idle();
    await this.#teardown();
  }

  /** Resolves when no state-machine pass is running (tests, orderly shutdown). */
  settled(): Promise<void> {
    return this.#loop.idle();
  }

  #who() {
    return { domid: this.domid, devid: this.devid, side: 'backend' as const };
  }

  async #pass(): Promise<void> {
    const { xs } = this.#deps;
    for (let i = 0; i < MAX_STEPS && !this.#closed; i++) {
      const [dir, stateNode, onlineNode, frontend] = await Promise.all([
        xs.readStringOptional(this.backendPath),
        xs.readStringOptional(`${this.backendPath}/state`),
        xs.readStringOptional(`${this.backendPath}/online`),
        readState(xs, this.frontendPath),
      ]);
      if (dir === undefined) {
        await this.#finish();
        return;
      }
      const backend = parseXenbusState(stateNode);
      this.#state = backend;
      this.#frontendState = frontend;
      // Bytes flow only while we are Connected (QEMU: events only in state 4).
      if (backend !== XenbusState.Connected) this.#hangup();
      if (this.#broken) {
        this.#broken = false;
        await this.#disconnect();
        if (!(await this.#write(XenbusState.Closing))) return this.#finish();
        continue;
      }
      const step = backendStep({
        backend,
        frontend,
        online: /^\s*[1-9]\d*\s*$/.test(onlineNode ?? ''),
        connected: this.#conn !== null,
      });
      switch (step.action) {
        case 'wait':
          return;
        case 'set':
          if (!(await this.#write(step.state))) return this.#finish();
          break;
        case 'connect':
          await this.#connect();
          break;
        case 'disconnect':
          await this.#disconnect();
          if (!(await this.#write(step.state))) return this.#finish();
          break;
        case 'finish':
          return this.#finish();
      }
    }
  }

  async #write(state: XenbusState): Promise<boolean> {
    const from = this.#state;
    const written = await writeState(this.#deps.xs, this.backendPath, state, {
      ...this.#who(),
      from,
    });
    if (written) {
      this.#state = state;
      if (from !== state) this.emit('state', from, state);
    }
    return written;
  }

  async #connect(): Promise<void> {
    const { xs, gnttab, evtchn } = this.#deps;
    const { domid, devid, label } = this;
    const nodes = await readConsoleNodes(xs, domid, devid);
    const fail = async (what: string, cause: unknown, details: Record<string, unknown> = {}) => {
      connectError(label, what, cause, { domid, ...details }, devid);
      await this.#write(XenbusState.Closing);
    };
    if (!consoleTypeServed(nodes.type, this.#types)) {
      const cause = new DeviceError(
        DeviceCode.FOREIGN_TYPE,
        `type ${JSON.stringify(nodes.type)} is served by another backend`,
      );
      return fail('take the console', cause, { type: nodes.type });
    }
    let ref: number;
    let remotePort: number;
    try {
      ref = parseU32Node('ring-ref', nodes.ringRef ?? '(missing)');
      remotePort = parseU32Node('port', nodes.port ?? '(missing)');
    } catch (cause) {
      return fail('read the frontend', cause, { ringRef: nodes.ringRef, port: nodes.port });
    }
    try {
      this.limit = parseConsoleLimit(nodes.limit);
    } catch {
      this.limit = null;
    }
    this.name = nodes.name;
    let mapping: ForeignMapping;
    try {
      mapping = await gnttab.map(domid, [ref]);
    } catch (cause) {
      return fail(`map grant ${ref}`, cause, { ringRef: ref });
    }
    // A handle of the connection's own, for its native pump, where the pump can run.
    const own = await openPumpHandle(evtchn, mapping.buffer);
    let port: number;
    try {
      port = await (own ?? evtchn).bindInterdomain(domid, remotePort);
    } catch (cause) {
      await own?.close().catch(() => {});
      await mapping.unmap().catch(() => {});
      return fail(`bind event channel ${remotePort}`, cause, { remotePort });
    }
    const rings = consoleBackendRings(mapping.buffer);
    let stream: ConsoleStream;
    try {
      stream = new ConsoleStream({
        domid,
        devid,
        side: 'backend',
        rx: rings.out,
        tx: rings.in,
        evtchn: own ?? evtchn,
        port,
        onBroken: () => {
          if (this.#conn !== conn) return;
          this.#broken = true;
          this.#loop.kick();
        },
      });
    } catch (cause) {
      if (own !== null) await own.close().catch(() => {});
      else await evtchn.unbind(port).catch(() => {});
      await mapping.unmap().catch(() => {});
      return fail('start the console stream', cause);
    }
    const conn: Connection = { mapping, port, own, hungUp: false, stream };
    this.#conn = conn;
    this.connections++;
    this.emit('connect', conn.stream);
    if (!(await this.#write(XenbusState.Connected))) return this.#finish();
    conn.stream.pump();
  }

  #hangup(): void {
    const conn = this.#conn;
    if (conn === null || conn.hungUp) return;
    conn.hungUp = true;
    conn.stream.hangup();
    this.emit('disconnect', conn.stream);
  }

  async #disconnect(): Promise<void> {
    const conn = this.#conn;
    if (conn === null) return;
    this.#hangup();
    this.#conn = null;
    try {
      // The stream (and its pump) stopped in #hangup above.
      if (conn.own !== null) await conn.own.close();
      else await this.#deps.evtchn.unbind(conn.port);
    } catch {
      // Unbound already (the handle closed, the domain went away).
    }
    await conn.mapping.unmap().catch(() => {});
  }

  async #finish(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#loop.stop();
    await this.#teardown();
  }

  async #teardown(): Promise<void> {
    await this.#disconnect();
    const watches = this.#watches.splice(0);
    await Promise.all(watches.map((w) => w.close().catch(() => {})));
    this.emit('close');
  }
}

/**
 * Serves secondary console `devid` of domain `domid` from our backend directory
 * (`/local/domain/BE/backend/console/D/N`, made by the toolstack, e.g.
 * {@link createSecondaryConsole}). Resolves once the watches are in place and the first round of
 * the handshake has run (our state is InitWait, or Connected if the guest was already waiting).
 * `ERR_CONSOLE_NOT_READY` when the device's directories are missing, `ERR_CONSOLE_FOREIGN_TYPE`
 * when its `type` is not ours, `ERR_CONSOLE_DEVID` for devid 0 (the primary console has no
 * handshake: {@link openPrimaryConsoleBackend}).
 */
export async function serveSecondaryConsole(
  options: ServeSecondaryConsoleOptions,
): Promise<SecondaryConsoleBackend> {
  checkDevid(options.devid);
  if (options.devid === 0) {
    throw new DeviceError(
      DeviceCode.DEVID,
      `${consoleLabel(options.domid, 0)} is the primary console: it has no xenbus handshake (openPrimaryConsoleBackend)`,
      { details: { domid: options.domid, devid: 0 } },
    );
  }
  const backend = new SecondaryConsoleBackend(options);
  const { xs } = options;
  const [frontendType, backendDir] = await Promise.all([
    xs.readStringOptional(`${backend.frontendPath}/type`),
    xs.readStringOptional(backend.backendPath),
  ]);
  if (backendDir === undefined) {
    throw new DeviceError(
      DeviceCode.NOT_READY,
      `${backend.label}: no backend directory ${backend.backendPath}`,
      { details: { domid: backend.domid, devid: backend.devid, path: backend.backendPath } },
    );
  }
  if (!consoleTypeServed(frontendType, options.types ?? DEFAULT_CONSOLE_TYPES)) {
    throw new DeviceError(
      DeviceCode.FOREIGN_TYPE,
      `${backend.label}: type ${JSON.stringify(frontendType)} is served by another backend`,
      { details: { domid: backend.domid, devid: backend.devid, type: frontendType } },
    );
  }
  await backend.start();
  return backend;
}
