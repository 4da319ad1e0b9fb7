import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { isXenconsError } from '@xencons/errors';
import type { EventChannels } from '@xencons/evtchn';
import type { Gnttab } from '@xencons/gnttab';
import type { XenstoreClient, XsWatch } from '@xencons/xenstore';
import { ConsoleHub, type OverflowPolicy } from './console-hub.js';
import { ConsoleLog } from './console-log.js';
import {
  type ConsoleSource,
  openPrimaryConsole,
  PortRouter,
  readPrimaryConsoleNodes,
} from './primary-console.js';
import {
  type AttachRequest,
  type ConsoleSummary,
  type DaemonReply,
  MAX_REQUEST,
  parseRequest,
} from './protocol.js';

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
}

export type DaemonEvent =
  | { type: 'console-up'; domid: number; name: string; num: number; via: string }
  | { type: 'console-down'; domid: number; name: string; num: number; reason: string }
  | { type: 'console-error'; domid: number; error: string }
  | { type: 'ready'; socketPath: string };

interface ServedConsole {
  hub: ConsoleHub;
  source: ConsoleSource;
}

interface DomainState {
  domid: number;
  name: string;
  watch: XsWatch | null;
  primary: ServedConsole | null;
  opening: Promise<void> | null;
  gone: boolean;
}

/**
 * The dom0 console daemon: serves every guest's console to logs, any number of viewers over a
 * local socket, and replay. Follows domains through `@introduceDomain` / `@releaseDomain` and
 * each domain's console nodes; a rebooted guest (new domid) gets a fresh console.
 */
export class ConsoleDaemon extends EventEmitter<{ event: [DaemonEvent] }> {
  private readonly options: ConsoleDaemonOptions;
  private readonly router: PortRouter;
  private readonly domains = new Map<number, DomainState>();
  private readonly logs = new Set<ConsoleLog>();
  private server: net.Server | null = null;
  private readonly clients = new Set<net.Socket>();
  private domainWatches: XsWatch[] = [];
  private scanning: Promise<void> | null = null;
  private rescan = false;
  private closed = false;

  constructor(options: ConsoleDaemonOptions) {
    super();
    this.options = options;
    this.router = new PortRouter(options.events);
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

  /** Every console being served. */
  list(): ConsoleSummary[] {
    const out: ConsoleSummary[] = [];
    for (const d of [...this.domains.values()].sort((a, b) => a.domid - b.domid)) {
      const primary = d.primary;
      out.push({
        domid: d.domid,
        name: d.name,
        num: 0,
        type: 'pv',
        state: primary ? (primary.hub.closed ? 'closed' : 'connected') : 'waiting',
        tty: null,
        viewers: primary ? primary.hub.viewerList().length : 0,
        writer: primary?.hub.viewerList().find((v) => v.writer)?.label ?? null,
        counters: primary ? { ...primary.hub.counters } : null,
        log: this.logPath(d.name),
      });
    }
    return out;
  }

  private logPath(name: string): string | null {
    return this.options.logDir && name ? path.join(this.options.logDir, `guest-${name}.log`) : null;
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
    const names =
      (await this.options.xs.directory('/local/domain').catch(() => [] as string[])) ?? [];
    const present = new Set(names.map(Number).filter((n) => Number.isInteger(n) && n > 0));
    for (const domid of present) if (!this.domains.has(domid)) await this.addDomain(domid);
    for (const domid of [...this.domains.keys()])
      if (!present.has(domid)) this.removeDomain(domid, 'the domain went away');
  }

  private async addDomain(domid: number): Promise<void> {
    const state: DomainState = {
      domid,
      name: '',
      watch: null,
      primary: null,
      opening: null,
      gone: false,
    };
    this.domains.set(domid, state);
    state.name =
      (await this.options.xs
        .readStringOptional(`/local/domain/${domid}/name`)
        .catch(() => undefined)) ?? '';
    try {
      const watch = await this.options.xs.watch(`/local/domain/${domid}/console`);
      state.watch = watch;
      void (async () => {
        for await (const _event of watch) {
          if (state.gone) break;
          this.tryOpenPrimary(state);
        }
      })().catch(() => {});
    } catch (error) {
      this.emit('event', { type: 'console-error', domid, error: (error as Error).message });
    }
  }

  private tryOpenPrimary(state: DomainState): void {
    if (state.primary && !state.primary.hub.closed) return;
    if (state.opening) return;
    state.opening = this.openPrimary(state)
      .catch((error: unknown) => {
        this.emit('event', {
          type: 'console-error',
          domid: state.domid,
          error: (error as Error).message,
        });
      })
      .finally(() => {
        state.opening = null;
      });
  }

  private async openPrimary(state: DomainState): Promise<void> {
    const { xs, gnttab } = this.options;
    const nodes = await readPrimaryConsoleNodes(xs, state.domid);
    if (!nodes || state.gone) return;
    const types = this.options.types ?? ['xenconsoled', 'xencons'];
    if (nodes.type !== undefined && nodes.type !== '' && !types.includes(nodes.type)) return;
    const source = await openPrimaryConsole(state.domid, nodes, gnttab, this.router);
    if (state.gone) {
      await source.close();
      return;
    }
    const logPath = this.logPath(state.name);
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
      num: 0,
      stream: source.stream,
      limit: nodes.limit,
      policy: this.options.policy ?? 'keep',
      rate: this.options.rate ?? 0,
      log,
      replayBytes: this.options.replayBytes ?? 64 * 1024,
    });
    state.primary = { hub, source };
    hub.once('closed', (reason) => {
      if (log) void log.close().then(() => this.logs.delete(log));
      void source.close();
      this.emit('event', {
        type: 'console-down',
        domid: state.domid,
        name: state.name,
        num: 0,
        reason,
      });
    });
    this.emit('event', {
      type: 'console-up',
      domid: state.domid,
      name: state.name,
      num: 0,
      via: source.via,
    });
  }

  private removeDomain(domid: number, reason: string): void {
    const state = this.domains.get(domid);
    if (!state) return;
    state.gone = true;
    this.domains.delete(domid);
    void state.watch?.close().catch(() => {});
    state.primary?.hub.close(reason);
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
    if (request.num !== 0) {
      this.reply(
        socket,
        {
          ok: false,
          code: 'ENOENT',
          message: `domain ${state.name || state.domid} has no console ${request.num}`,
        },
        true,
      );
      return;
    }
    const primary = state.primary;
    if (!primary || primary.hub.closed) {
      this.reply(
        socket,
        {
          ok: false,
          code: 'EAGAIN',
          message: `the console of domain ${state.name || state.domid} is not connected yet`,
        },
        true,
      );
      return;
    }
    primary.hub.attach(socket, {
      mode: request.mode,
      replay: request.replay,
      takeOver: request.takeOver,
      label: request.label,
      onAccepted: (info) =>
        this.reply(
          socket,
          {
            ok: true,
            console: { domid: state.domid, name: state.name, num: 0 },
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
