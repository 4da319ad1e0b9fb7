import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { Duplex } from 'node:stream';
import {
  DEFAULT_CONSOLE_TYPES,
  listSecondaryConsoles,
  openPrimaryConsoleBackend,
  type PrimaryConsoleBackend,
  parseConsoleLimit,
  type SecondaryConsoleBackend,
  serveSecondaryConsole,
} from '@xencons/device';
import { isXenconsError } from '@xencons/errors';
import type { EventChannels } from '@xencons/evtchn';
import type { Gnttab } from '@xencons/gnttab';
import type { XenstoreClient, XsWatch } from '@xencons/xenstore';
import { ConsoleHub, type OverflowPolicy } from './console-hub.js';
import { ConsoleLog } from './console-log.js';
import { ConsolePty } from './console-pty.js';
import {
  type AttachRequest,
  type ConsoleSummary,
  type DaemonReply,
  MAX_REQUEST,
  parseRequest,
} from './protocol.js';
import { PtyClientStream, xenconsoledRunning } from './pty-client.js';

export interface ConsoleDaemonOptions {
  xs: XenstoreClient;
  gnttab: Gnttab;
  events: EventChannels;
  /** Socket for `xencons console` / `list` (created mode 0600). */
  socketPath: string;
  /** Folder of `guest-NAME.log` files; null for no logs. */
  logDir: string | null;
  timestamps?: boolean;
  rotateBytes?: number;
  rotateKeep?: number;
  policy?: OverflowPolicy;
  /** Guest output bytes per second per console (0: none). */
  rate?: number;
  replayBytes?: number;
  /** `console/type` values served (a console without `type` is served too). */
  types?: readonly string[];
  /** Publish a pty per console in its `tty` node (default true). */
  pty?: boolean;
  /**
   * How to reach primary consoles: `ring` maps the page (we are the console backend), `pty` sits
   * on the pty xenconsoled publishes in `console/tty` (xenconsoled owns the ring), `auto`
   * (default) picks `pty` when a xenconsoled process runs here.
   */
  primary?: 'auto' | 'ring' | 'pty';
}

export type DaemonEvent =
  | { type: 'console-up'; domid: number; name: string; num: number; via: string }
  | { type: 'console-down'; domid: number; name: string; num: number; reason: string }
  | { type: 'console-moved'; domid: number; name: string; num: number; via: string }
  | { type: 'console-error'; domid: number; error: string }
  | { type: 'ready'; socketPath: string };

interface ServedConsole {
  num: number;
  hub: ConsoleHub;
  pty: ConsolePty | null;
  tty: string | null;
}

interface DomainState {
  domid: number;
  name: string;
  watches: XsWatch[];
  primary: ServedConsole | null;
  primaryBackend: PrimaryConsoleBackend | null;
  /** The xenconsoled pty we sit on, in `pty` mode. */
  primaryTty: string | null;
  opening: Promise<void> | null;
  secondaries: Map<number, { backend: SecondaryConsoleBackend; served: ServedConsole | null }>;
  syncingDevices: boolean;
  gone: boolean;
}

/**
 * The dom0 console daemon: serves every guest's consoles (the primary and `device/console/N`)
 * to logs, a pty each (published in `tty` for Xen's own `xenconsole`), any number of viewers
 * over a local socket, and replay. Follows domains through `@introduceDomain` /
 * `@releaseDomain` and each domain's console nodes; a rebooted guest (new domid) gets fresh
 * consoles.
 */
export class ConsoleDaemon extends EventEmitter<{ event: [DaemonEvent] }> {
  private readonly options: ConsoleDaemonOptions;
  private readonly domains = new Map<number, DomainState>();
  private readonly logs = new Set<ConsoleLog>();
  private readonly clients = new Set<net.Socket>();
  private server: net.Server | null = null;
  private domainWatches: XsWatch[] = [];
  private scanning: Promise<void> | null = null;
  private rescan = false;
  private closed = false;

  constructor(options: ConsoleDaemonOptions) {
    super();
    this.options = options;
  }

  private get deps() {
    return { xs: this.options.xs, evtchn: this.options.events, gnttab: this.options.gnttab };
  }

  async start(): Promise<void> {
    if (this.options.logDir) fs.mkdirSync(this.options.logDir, { recursive: true });
    fs.mkdirSync(path.dirname(this.options.socketPath), { recursive: true });
    fs.rmSync(this.options.socketPath, { force: true });
    const server = net.createServer((socket) => this.serveClient(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.socketPath, () => resolve());
    });
    fs.chmodSync(this.options.socketPath, 0o600);
    this.server = server;
    for (const special of ['@introduceDomain', '@releaseDomain']) {
      const watch = await this.options.xs.watch(special);
      this.domainWatches.push(watch);
      void (async () => {
        for await (const _event of watch) this.scan();
      })().catch(() => {});
    }
    this.scan();
    await this.scanning;
    this.emit('event', { type: 'ready', socketPath: this.options.socketPath });
  }

  /** Every console being served (or waiting for its guest). */
  list(): ConsoleSummary[] {
    const out: ConsoleSummary[] = [];
    const summary = (
      d: DomainState,
      num: number,
      served: ServedConsole | null,
      state: ConsoleSummary['state'],
    ) => {
      const viewers = served?.hub.viewerList() ?? [];
      out.push({
        domid: d.domid,
        name: d.name,
        num,
        type: 'pv',
        state,
        tty: served?.pty?.path ?? null,
        viewers: viewers.length,
        writer: viewers.find((v) => v.writer)?.label ?? null,
        counters: served ? { ...served.hub.counters, ptyDropped: served.pty?.dropped ?? 0 } : null,
        log: this.logPath(d.name, num),
      });
    };
    for (const d of [...this.domains.values()].sort((a, b) => a.domid - b.domid)) {
      summary(
        d,
        0,
        d.primary,
        d.primary ? (d.primary.hub.closed ? 'closed' : 'connected') : 'waiting',
      );
      for (const [devid, secondary] of [...d.secondaries].sort((a, b) => a[0] - b[0])) {
        const served = secondary.served;
        summary(d, devid, served, served && !served.hub.closed ? 'connected' : 'waiting');
      }
    }
    return out;
  }

  private logPath(name: string, num: number): string | null {
    if (!this.options.logDir || !name) return null;
    return path.join(
      this.options.logDir,
      num === 0 ? `guest-${name}.log` : `guest-${name}-${num}.log`,
    );
  }

  /** Re-reads the domain list (coalescing bursts of events). */
  private scan(): void {
    if (this.scanning) {
      this.rescan = true;
      return;
    }
    this.scanning = this.scanNow().finally(() => {
      this.scanning = null;
      if (this.rescan && !this.closed) {
        this.rescan = false;
        this.scan();
      }
    });
  }

  private async scanNow(): Promise<void> {
    if (this.closed) return;
    const names = await this.options.xs.directory('/local/domain').catch(() => [] as string[]);
    const present = new Set(names.map(Number).filter((n) => Number.isInteger(n) && n > 0));
    for (const domid of present) if (!this.domains.has(domid)) await this.addDomain(domid);
    for (const domid of [...this.domains.keys()])
      if (!present.has(domid)) this.removeDomain(domid, 'the domain went away');
  }

  private async addDomain(domid: number): Promise<void> {
    const state: DomainState = {
      domid,
      name: '',
      watches: [],
      primary: null,
      primaryBackend: null,
      primaryTty: null,
      opening: null,
      secondaries: new Map(),
      syncingDevices: false,
      gone: false,
    };
    this.domains.set(domid, state);
    state.name =
      (await this.options.xs
        .readStringOptional(`/local/domain/${domid}/name`)
        .catch(() => undefined)) ?? '';
    const follow = async (node: string, onEvent: () => void) => {
      const watch = await this.options.xs.watch(node);
      state.watches.push(watch);
      void (async () => {
        for await (const _event of watch) {
          if (state.gone) break;
          onEvent();
        }
      })().catch(() => {});
    };
    try {
      await follow(`/local/domain/${domid}/console`, () => {
        this.tryOpenPrimary(state);
        // The domain's nodes went away (a toolstack that releases before removing them, or
        // none at all): rescan rather than wait for a @releaseDomain that came too early.
        void this.options.xs
          .exists(`/local/domain/${domid}`)
          .then((exists) => {
            if (!exists) this.scan();
          })
          .catch(() => {});
      });
      await follow(`/local/domain/${domid}/device/console`, () => void this.syncSecondaries(state));
    } catch (error) {
      this.emit('event', { type: 'console-error', domid, error: describeError(error) });
    }
  }

  private tryOpenPrimary(state: DomainState): void {
    if (state.opening) return;
    // An open console is looked at again too: xenconsoled may replace its pty, and a toolstack
    // may move the ring (soft reset: new `ring-ref` and `port`).
    state.opening = this.openPrimary(state)
      .catch((error: unknown) => {
        const code = isXenconsError(error) ? error.code : '';
        // Not ready yet, or not ours: wait for the next change of the nodes.
        if (code === 'ERR_CONSOLE_NOT_READY' || code === 'ERR_CONSOLE_FOREIGN_TYPE') return;
        this.emit('event', {
          type: 'console-error',
          domid: state.domid,
          error: describeError(error),
        });
      })
      .finally(() => {
        state.opening = null;
      });
  }

  private primaryMode(): 'ring' | 'pty' {
    const mode = this.options.primary ?? 'auto';
    if (mode !== 'auto') return mode;
    return xenconsoledRunning() ? 'pty' : 'ring';
  }

  /** `pty` mode: follow xenconsoled's pty for this console (reopened when it changes). */
  private async openPrimaryPty(state: DomainState): Promise<void> {
    const base = `/local/domain/${state.domid}/console`;
    const tty = await this.options.xs.readStringOptional(`${base}/tty`);
    if (!tty || state.gone || this.closed) return; // xenconsoled has not published it yet
    if (state.primary && !state.primary.hub.closed) {
      if (state.primaryTty === tty) return;
      state.primary.hub.close('xenconsoled replaced its pty');
    }
    const limit =
      parseConsoleLimit((await this.options.xs.readStringOptional(`${base}/limit`)) ?? '') ?? 0;
    const stream = new PtyClientStream(tty);
    state.primaryTty = tty;
    state.primary = await this.serve(state, 0, stream, limit, null, async () => {
      stream.destroy();
    });
    this.emit('event', {
      type: 'console-up',
      domid: state.domid,
      name: state.name,
      num: 0,
      via: `pty ${tty}`,
    });
  }

  private async openPrimary(state: DomainState): Promise<void> {
    if (this.primaryMode() === 'pty') {
      await this.openPrimaryPty(state);
      return;
    }
    if (state.primary && !state.primary.hub.closed) {
      await this.movePrimaryIfChanged(state, state.primary);
      return;
    }
    const backend = await this.openPrimaryBackend(state);
    if (backend === null) return;
    state.primaryBackend = backend;
    state.primary = await this.serve(
      state,
      0,
      backend.stream,
      backend.info.limit ?? 0,
      backend.info.ttyPath,
      async () => {
        await state.primaryBackend?.close();
      },
    );
    this.emit('event', {
      type: 'console-up',
      domid: state.domid,
      name: state.name,
      num: 0,
      via: backend.info.via,
    });
  }

  private async openPrimaryBackend(state: DomainState): Promise<PrimaryConsoleBackend | null> {
    const backend = await openPrimaryConsoleBackend({
      ...this.deps,
      domid: state.domid,
      types: this.options.types ?? DEFAULT_CONSOLE_TYPES,
    });
    if (state.gone || this.closed) {
      await backend.close();
      return null;
    }
    return backend;
  }

  /**
   * A ring console whose `ring-ref` or `port` changed (xenconsoled's rule: a toolstack's soft
   * reset or a kexec'd guest publishes a new ring): the same hub, pty, log and viewers go on over
   * the new ring; the old one is released after its last bytes were taken.
   */
  private async movePrimaryIfChanged(state: DomainState, served: ServedConsole): Promise<void> {
    const old = state.primaryBackend;
    if (old === null) return;
    const base = `/local/domain/${state.domid}/console`;
    const [ringRef, port] = await Promise.all([
      this.options.xs.readStringOptional(`${base}/ring-ref`).catch(() => undefined),
      this.options.xs.readStringOptional(`${base}/port`).catch(() => undefined),
    ]);
    // Half-written (the toolstack writes both in one transaction; a guest may not) or gone.
    if (ringRef === undefined || port === undefined) return;
    if (Number(ringRef) === old.info.ringRef && Number(port) === old.info.remotePort) return;
    if (state.gone || this.closed || served.hub.closed) return;
    let via = '';
    await served.hub.moveTo(
      async () => {
        const backend = await this.openPrimaryBackend(state);
        if (backend === null) throw new Error('the domain went away');
        state.primaryBackend = backend;
        via = backend.info.via;
        return backend.stream;
      },
      async () => {
        state.primaryBackend = null;
        await old.close();
      },
    );
    if (served.hub.closed) return;
    this.emit('event', {
      type: 'console-moved',
      domid: state.domid,
      name: state.name,
      num: 0,
      via,
    });
  }

  private async syncSecondaries(state: DomainState): Promise<void> {
    if (state.syncingDevices) return;
    state.syncingDevices = true;
    try {
      const devids = await listSecondaryConsoles(this.options.xs, state.domid);
      for (const devid of devids) {
        if (state.secondaries.has(devid) || state.gone) continue;
        let backend: SecondaryConsoleBackend;
        try {
          backend = await serveSecondaryConsole({
            ...this.deps,
            domid: state.domid,
            devid,
            types: this.options.types ?? DEFAULT_CONSOLE_TYPES,
          });
        } catch (error) {
          const code = isXenconsError(error) ? error.code : '';
          if (code !== 'ERR_CONSOLE_NOT_READY' && code !== 'ERR_CONSOLE_FOREIGN_TYPE') {
            this.emit('event', {
              type: 'console-error',
              domid: state.domid,
              error: describeError(error),
            });
          }
          continue;
        }
        const entry: { backend: SecondaryConsoleBackend; served: ServedConsole | null } = {
          backend,
          served: null,
        };
        state.secondaries.set(devid, entry);
        const onConnect = (stream: Duplex) => {
          void this.serve(
            state,
            devid,
            stream,
            backend.limit ?? 0,
            backend.ttyPath,
            async () => {},
          ).then((served) => {
            entry.served = served;
            this.emit('event', {
              type: 'console-up',
              domid: state.domid,
              name: state.name,
              num: devid,
              via: 'grant',
            });
          });
        };
        backend.on('connect', onConnect);
        // A guest that had published its ring already is connected before we could listen.
        if (backend.stream) onConnect(backend.stream);
        backend.on('disconnect', () =>
          entry.served?.hub.close(`the guest closed console ${devid}`),
        );
        backend.on('close', () => {
          entry.served?.hub.close(`console ${devid} was removed`);
          state.secondaries.delete(devid);
        });
      }
    } finally {
      state.syncingDevices = false;
    }
  }

  /** Puts a console stream behind a hub, a log and a pty whose path goes to `ttyNode`. */
  private async serve(
    state: DomainState,
    num: number,
    stream: Duplex,
    limit: number,
    ttyNode: string | null,
    release: () => Promise<void>,
  ): Promise<ServedConsole> {
    const logPath = this.logPath(state.name, num);
    const log = logPath
      ? new ConsoleLog(logPath, {
          timestamps: this.options.timestamps ?? false,
          maxBytes: this.options.rotateBytes ?? 0,
          keep: this.options.rotateKeep ?? 5,
        })
      : null;
    if (log) {
      this.logs.add(log);
      log.on('error', (error) =>
        this.emit('event', {
          type: 'console-error',
          domid: state.domid,
          error: `log ${log.path}: ${error.message}`,
        }),
      );
    }
    const hub = new ConsoleHub({
      domid: state.domid,
      name: state.name,
      num,
      stream,
      limit,
      policy: this.options.policy ?? 'keep',
      rate: this.options.rate ?? 0,
      log,
      replayBytes: this.options.replayBytes ?? 64 * 1024,
    });
    let pty: ConsolePty | null = null;
    if (this.options.pty !== false && ttyNode !== null) {
      try {
        pty = ConsolePty.open(Math.max(limit, 64 * 1024));
        const consolePty = pty;
        hub.addOutputSink((bytes) => consolePty.write(bytes));
        consolePty.onInput((bytes) => {
          if (!hub.inputFromPty(bytes)) {
            consolePty.pause();
            hub.onceInputDrained(() => consolePty.resume());
          }
        });
        await this.options.xs.write(ttyNode, consolePty.path).catch(() => {});
      } catch (error) {
        this.emit('event', {
          type: 'console-error',
          domid: state.domid,
          error: `pty: ${describeError(error)}`,
        });
      }
    }
    const served: ServedConsole = { num, hub, pty, tty: pty?.path ?? null };
    hub.once('closed', (reason) => {
      pty?.close();
      if (log) void log.close().then(() => this.logs.delete(log));
      void release().catch(() => {});
      this.emit('event', {
        type: 'console-down',
        domid: state.domid,
        name: state.name,
        num,
        reason,
      });
    });
    return served;
  }

  private removeDomain(domid: number, reason: string): void {
    const state = this.domains.get(domid);
    if (!state) return;
    state.gone = true;
    this.domains.delete(domid);
    for (const watch of state.watches) void watch.close().catch(() => {});
    state.primary?.hub.close(reason);
    void state.primaryBackend?.close().catch(() => {});
    for (const { backend, served } of state.secondaries.values()) {
      served?.hub.close(reason);
      void backend.close().catch(() => {});
    }
    state.secondaries.clear();
  }

  /** Reopens every log (SIGHUP). */
  reopenLogs(): void {
    for (const log of this.logs) log.reopen();
  }

  private find(domain: string | number): DomainState | undefined {
    const text = String(domain);
    if (/^\d+$/.test(text)) return this.domains.get(Number(text));
    return [...this.domains.values()].find((d) => d.name === text);
  }

  private serveClient(socket: net.Socket): void {
    this.clients.add(socket);
    socket.once('close', () => this.clients.delete(socket));
    socket.on('error', () => {});
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      const newline = buffered.indexOf('\n');
      if (newline < 0) {
        if (buffered.length > MAX_REQUEST)
          this.reply(socket, { ok: false, code: 'EPROTO', message: 'request too long' }, true);
        return;
      }
      socket.off('data', onData);
      socket.pause();
      const rest = Buffer.from(buffered.slice(newline + 1), 'latin1');
      let request: ReturnType<typeof parseRequest>;
      try {
        request = parseRequest(buffered.slice(0, newline));
      } catch (error) {
        this.reply(socket, { ok: false, code: 'EPROTO', message: (error as Error).message }, true);
        return;
      }
      if (request.op === 'list') {
        this.reply(socket, { ok: true, consoles: this.list() }, true);
        return;
      }
      this.attachClient(socket, request, rest);
    };
    socket.on('data', onData);
  }

  private reply(socket: net.Socket, reply: DaemonReply, end: boolean): void {
    const text = `${JSON.stringify(reply)}\n`;
    if (end) socket.end(text);
    else socket.write(text);
  }

  private attachClient(socket: net.Socket, request: AttachRequest, rest: Buffer): void {
    const state = this.find(request.domain);
    if (!state) {
      this.reply(
        socket,
        { ok: false, code: 'ENOENT', message: `no domain ${request.domain}` },
        true,
      );
      return;
    }
    const served = request.num === 0 ? state.primary : state.secondaries.get(request.num)?.served;
    const what = `console ${request.num} of domain ${state.name || state.domid}`;
    if (request.num !== 0 && !state.secondaries.has(request.num)) {
      this.reply(socket, { ok: false, code: 'ENOENT', message: `there is no ${what}` }, true);
      return;
    }
    if (!served || served.hub.closed) {
      this.reply(
        socket,
        { ok: false, code: 'EAGAIN', message: `${what} is not connected yet` },
        true,
      );
      return;
    }
    served.hub.attach(socket, {
      mode: request.mode,
      replay: request.replay,
      takeOver: request.takeOver,
      label: request.label,
      onAccepted: (info) =>
        this.reply(
          socket,
          {
            ok: true,
            console: { domid: state.domid, name: state.name, num: request.num },
            writer: info.writer,
          },
          false,
        ),
    });
    if (rest.length > 0) socket.unshift(rest);
    socket.resume();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const watch of this.domainWatches) await watch.close().catch(() => {});
    for (const domid of [...this.domains.keys()])
      this.removeDomain(domid, 'the console daemon is stopping');
    for (const socket of this.clients) socket.destroy();
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
    fs.rmSync(this.options.socketPath, { force: true });
    await Promise.all([...this.logs].map((log) => log.close()));
  }
}

export function describeError(error: unknown): string {
  return isXenconsError(error)
    ? `${error.message} (${error.code})`
    : String((error as Error)?.message ?? error);
}
