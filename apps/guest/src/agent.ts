import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type * as net from 'node:net';
import {
  type AuditRecord,
  type AuditSink,
  LoginShell,
  type LoginShellOptions,
  loginShellChannel,
  lookupAccount,
  systemLogAudit,
} from '@xencons/login-shell';
import { ConsoleWorker, type ShellFactory } from './console-worker.js';
import type { AgentConsole, ConsoleInfo, ConsoleRole, ConsoleSource } from './consoles/types.js';
import { type ControlReply, type ControlRequest, serveControl } from './control.js';
import { DebugRegistry, type DebugTrigger, globalDebugRegistry } from './debug/registry.js';
import { XenstoreDebugNode } from './debug/xenstore-node.js';
import { JournalForwarder } from './journal.js';
import type { AgentLog } from './log.js';
import { LogConsole } from './log-console.js';

/** The channel name that marks the log console (`name` of `device/console/N`). */
export const LOG_CHANNEL = 'xencons-log';

/** Which consoles get a login: `all`, or ids/names (`0`, `hvc1`); `exclude` wins. */
export interface ConsoleSelection {
  include: 'all' | readonly string[];
  exclude: readonly string[];
}

/** `auto`: the console whose channel name is `xencons-log`; a console id/name; or none. */
export type LogConsoleChoice = 'auto' | 'none' | { match: string };

export interface AgentOptions {
  source: ConsoleSource;
  log: AgentLog;
  /** Options for every login shell (`console` and `audit` are the agent's). */
  login?: Omit<LoginShellOptions, 'console' | 'audit'>;
  /** Where audit records go besides the agent's log (default: the system log, via logger(1)). */
  audit?: AuditSink;
  logins?: ConsoleSelection;
  logConsole?: LogConsoleChoice;
  /** In-band hotkey prefix byte (default 0x1e, Ctrl-^), or null for none. */
  hotkeyPrefix?: number | null;
  /** Publish the out-of-band debug node in xenstore when xenstore is reachable (default true). */
  debugNode?: boolean;
  /** Control socket path for `xencons-agent debug|status`, or null for none. */
  controlSocket?: string | null;
  /** Registry of debug callbacks (default: the process-wide one). */
  registry?: DebugRegistry;
  /** Also forward this command's output lines (e.g. `journalctl -f`) to the log console. */
  journal?: readonly string[] | null;
  /** Replaces `new LoginShell` (tests). */
  makeShell?: ShellFactory;
  restartDelayMs?: number;
  version?: string;
}

export interface AgentStats {
  startedAt: Date;
  consolesAdded: number;
  consolesGone: number;
  sessionsStarted: number;
  sessionsEnded: number;
  logins: Partial<Record<AuditRecord['outcome'], number>>;
  restarts: number;
  debug: Record<DebugTrigger, number>;
}

export interface AgentStatus {
  platform: string;
  pid: number;
  version: string;
  consoles: {
    id: string;
    name: string;
    role: ConsoleRole;
    primary: boolean;
    channel: string | null;
    session: { user: string; pty: string; since: string } | null;
    restarts: number;
  }[];
  logConsole: ReturnType<LogConsole['stats']>;
  stats: AgentStats;
}

function matches(info: ConsoleInfo, token: string): boolean {
  return token === info.id || token === info.name || token === `channel:${info.channel ?? ''}`;
}

/**
 * The guest agent: a login shell on every console it is given (and a new one on every console
 * that appears), the agent's log on a dedicated console, debug callbacks triggered in band (a
 * hotkey on any console) and out of band (a xenstore node dom0 writes, a local control socket).
 * Platforms differ only in their {@link ConsoleSource}.
 */
export class Agent {
  readonly options: AgentOptions;
  readonly log: AgentLog;
  readonly registry: DebugRegistry;
  readonly logConsole = new LogConsole();
  readonly stats: AgentStats = {
    startedAt: new Date(),
    consolesAdded: 0,
    consolesGone: 0,
    sessionsStarted: 0,
    sessionsEnded: 0,
    logins: {},
    restarts: 0,
    debug: { console: 0, xenstore: 0, control: 0 },
  };
  readonly #workers = new Map<string, ConsoleWorker>();
  readonly #consoles = new Map<string, AgentConsole>();
  readonly #deregister: (() => void)[] = [];
  readonly #audit: AuditSink;
  readonly #onLoginEvent = (message: unknown) => this.#loginEvent(message);
  #logConsoleId: string | null = null;
  #debugNode: XenstoreDebugNode | null = null;
  #control: net.Server | null = null;
  #journal: JournalForwarder | null = null;
  #removeLogSink: (() => void) | null = null;
  #stopped = false;

  constructor(options: AgentOptions) {
    this.options = options;
    this.log = options.log;
    this.registry = options.registry ?? globalDebugRegistry();
    const downstream = options.audit ?? systemLogAudit();
    this.#audit = (record) => {
      this.stats.logins[record.outcome] = (this.stats.logins[record.outcome] ?? 0) + 1;
      this.log.info('login', {
        console: record.console,
        user: record.user,
        backend: record.backend,
        outcome: record.outcome,
        detail: record.detail,
      });
      downstream(record);
    };
  }

  get platform(): string {
    return this.options.source.platform;
  }

  get version(): string {
    return this.options.version ?? '0.0.0';
  }

  async start(): Promise<void> {
    this.#removeLogSink = this.log.addSink(this.logConsole.sink());
    subscribe(loginShellChannel.name, this.#onLoginEvent);
    this.#registerBuiltins();
    await this.options.source.start({
      decide: (info) => this.#decide(info),
      onConsole: (c) => this.#add(c),
      onProblem: (message, fields) => this.log.warn(message, fields),
    });
    if (this.options.debugNode !== false) await this.#startDebugNode();
    if (this.options.controlSocket) {
      try {
        this.#control = await serveControl(this.options.controlSocket, (r) => this.#control_(r));
      } catch (error) {
        this.log.warn(`no control socket: ${(error as Error).message}`, {
          socket: this.options.controlSocket,
        });
      }
    }
    if (this.options.journal) {
      this.#journal = new JournalForwarder(this.options.journal, this.logConsole, this.log);
      this.#journal.start();
    }
    const prefix = this.options.hotkeyPrefix === undefined ? 0x1e : this.options.hotkeyPrefix;
    this.log.info('xencons-agent ready', {
      platform: this.platform,
      consoles:
        [...this.#consoles.values()].map((c) => `${c.name}:${c.role}`).join(',') || 'none yet',
      hotkey: prefix === null ? 'off' : `^${String.fromCharCode(prefix + 0x40)}`,
      debugNode: this.#debugNode?.path ?? 'none',
      control: this.#control ? this.options.controlSocket : 'none',
    });
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.log.info('xencons-agent stopping');
    this.#journal?.stop();
    await new Promise<void>((resolve) =>
      this.#control ? this.#control.close(() => resolve()) : resolve(),
    );
    await this.#debugNode?.close();
    await Promise.all([...this.#workers.values()].map((w) => w.stop()));
    await this.options.source.close();
    unsubscribe(loginShellChannel.name, this.#onLoginEvent);
    for (const d of this.#deregister.splice(0)) d();
    this.#removeLogSink?.();
  }

  status(): AgentStatus {
    return {
      platform: this.platform,
      pid: process.pid,
      version: this.version,
      consoles: [...this.#consoles.values()].map((c) => {
        const w = this.#workers.get(c.id);
        const s = w?.status()?.session ?? null;
        return {
          id: c.id,
          name: c.name,
          role: c.role,
          primary: c.primary,
          channel: c.channel,
          session: s && { user: this.#safeUser(s.user), pty: s.pty, since: s.since.toISOString() },
          restarts: w?.restarts ?? 0,
        };
      }),
      logConsole: this.logConsole.stats(),
      stats: this.stats,
    };
  }

  /**
   * Runs the callbacks of `key` and sends the output where it belongs: the console the hotkey was
   * typed on (in band), the primary console (from xenstore, as SysRq output lands on hvc0), and
   * always the log console. Returns the lines.
   */
  async debug(key: string, trigger: DebugTrigger, origin?: ConsoleWorker): Promise<string[]> {
    this.stats.debug[trigger]++;
    const lines = await this.registry.run(key, trigger);
    const text = `\r\n${lines.join('\r\n')}\r\n`;
    if (origin) origin.write(text);
    else if (trigger === 'xenstore') {
      for (const w of this.#workers.values()) if (w.console.primary) w.write(text);
    }
    this.log.info('debug key', { key, trigger, console: origin?.console.name });
    for (const line of lines) this.logConsole.writeLine(line);
    return lines;
  }

  #decide(info: ConsoleInfo): ConsoleRole | null {
    const choice = this.options.logConsole ?? 'auto';
    const isLog =
      choice === 'auto'
        ? info.channel === LOG_CHANNEL
        : choice !== 'none' && matches(info, choice.match);
    if (isLog) return this.#logConsoleId === null || this.#logConsoleId === info.id ? 'log' : null;
    const sel = this.options.logins ?? { include: 'all', exclude: [] };
    if (sel.exclude.some((t) => matches(info, t))) return null;
    if (sel.include === 'all') {
      // A named channel belongs to some program (a guest agent's transport…), not to a person.
      return info.channel === null ? 'login' : null;
    }
    return sel.include.some((t) => matches(info, t)) ? 'login' : null;
  }

  #add(c: AgentConsole): void {
    if (this.#stopped) {
      void c.close();
      return;
    }
    this.stats.consolesAdded++;
    this.#consoles.set(c.id, c);
    const deregisterRing = this.registry.register(
      'r',
      `console ${c.name}`,
      (out) => {
        const facts = c.describe();
        out.line(
          `${c.role}${c.primary ? ' (primary)' : ''}${c.channel ? ` channel ${c.channel}` : ''}: ${Object.entries(
            facts,
          )
            .map(([k, v]) => `${k}=${v}`)
            .join(' ')}`,
        );
      },
      'console rings',
    );
    void c.gone.then((why) => {
      this.stats.consolesGone++;
      deregisterRing();
      if (this.#consoles.get(c.id) === c) this.#consoles.delete(c.id);
      if (!this.#stopped) this.log.info('console gone', { console: c.name, reason: why });
      void this.#debugNode?.refreshKeys();
    });
    if (c.role === 'log') {
      this.#logConsoleId = c.id;
      this.logConsole.attach(c.stream, c.name);
      void c.gone.then(() => {
        this.logConsole.detach(c.stream);
        if (this.#logConsoleId === c.id) this.#logConsoleId = null;
      });
      this.log.info('log console attached', { console: c.name, channel: c.channel ?? undefined });
      return;
    }
    const prefix = this.options.hotkeyPrefix === undefined ? 0x1e : this.options.hotkeyPrefix;
    const worker = new ConsoleWorker(c, {
      makeShell: this.options.makeShell ?? ((stream, con) => this.#loginShell(stream, con)),
      hotkeyPrefix: prefix,
      isKey: (key) => this.registry.has(key),
      onKey: (key, w) => void this.debug(key, 'console', w),
      onRestart: (w, error, delayMs) => {
        this.stats.restarts++;
        this.log.warn('login shell ended while its console is still there; starting it again', {
          console: w.console.name,
          error: error === null ? undefined : (error as Error)?.message,
          delayMs,
        });
      },
      ...(this.options.restartDelayMs !== undefined
        ? { restartDelayMs: this.options.restartDelayMs }
        : {}),
    });
    this.#workers.set(c.id, worker);
    this.log.info('console up', {
      console: c.name,
      kind: c.kind,
      primary: c.primary,
      channel: c.channel ?? undefined,
    });
    void worker.run().finally(() => {
      if (this.#workers.get(c.id) === worker) this.#workers.delete(c.id);
    });
  }

  #loginShell(stream: import('node:stream').Duplex, c: AgentConsole): LoginShell {
    return new LoginShell(stream, { ...this.options.login, console: c.name, audit: this.#audit });
  }

  /** With `login`, a session starts before the password is checked: log only real account names. */
  #safeUser(user: string): string {
    const backend = this.options.login?.backend ?? (process.getuid?.() === 0 ? 'login' : 'file');
    if (backend !== 'login') return user;
    try {
      return lookupAccount(user) ? user : 'UNKNOWN';
    } catch {
      return 'UNKNOWN';
    }
  }

  #loginEvent(message: unknown): void {
    const m = message as {
      console?: string;
      event?: string;
      user?: string;
      pty?: string;
      reason?: string;
      error?: unknown;
    };
    if (m.console === undefined || ![...this.#consoles.values()].some((c) => c.name === m.console))
      return;
    switch (m.event) {
      case 'session-start':
        this.stats.sessionsStarted++;
        this.log.info('session started', {
          console: m.console,
          user: this.#safeUser(m.user ?? ''),
          pty: m.pty,
        });
        break;
      case 'session-end':
        this.stats.sessionsEnded++;
        this.log.info('session ended', { console: m.console, reason: m.reason });
        break;
      case 'error':
        this.log.warn('login shell error', {
          console: m.console,
          error: (m.error as Error)?.message ?? String(m.error),
        });
        break;
    }
  }

  async #startDebugNode(): Promise<void> {
    const store = await this.options.source.xenstore().catch(() => null);
    if (store === null) {
      this.log.info('no xenstore here: debug keys only in band and through the control socket');
      return;
    }
    const node = new XenstoreDebugNode({
      xs: store.xs,
      domid: store.domid,
      run: (key) => this.debug(key, 'xenstore'),
      keyList: () => this.registry.keyList(),
      version: `xencons-agent ${this.version}`,
      onProblem: (message) => this.log.warn(message),
    });
    try {
      await node.start();
      this.#debugNode = node;
    } catch (error) {
      this.log.warn(`no out-of-band debug node: ${(error as Error).message}`);
    }
  }

  async #control_(request: ControlRequest): Promise<ControlReply> {
    if (request.op === 'status') return { ok: true, status: this.status() };
    return { ok: true, lines: await this.debug(request.key, 'control') };
  }

  #registerBuiltins(): void {
    const reg = this.registry;
    this.#deregister.push(
      reg.register(
        's',
        'sessions',
        (out) => {
          const status = this.status();
          const logins = status.consoles.filter((c) => c.role === 'login');
          if (logins.length === 0) out.line('no login consoles');
          for (const c of logins) {
            const where = `${c.name}${c.primary ? ' (primary)' : ''}`;
            const restarts = c.restarts ? `, restarted ${c.restarts}x` : '';
            if (c.session)
              out.line(
                `${where}: ${c.session.user} on ${c.session.pty} since ${c.session.since}${restarts}`,
              );
            else out.line(`${where}: at the login prompt${restarts}`);
          }
        },
        'sessions',
      ),
      reg.register(
        'r',
        'log console',
        (out) => {
          const s = this.logConsole.stats();
          out.line(
            `${s.attached ?? 'none attached'}: forwarded=${s.forwarded} dropped=${s.dropped} backlog=${s.backlog}`,
          );
        },
        'console rings',
      ),
      reg.register(
        'a',
        'agent',
        (out) => {
          const st = this.stats;
          const mem = process.memoryUsage();
          const up = Math.round((Date.now() - st.startedAt.getTime()) / 1000);
          out.line(
            `xencons-agent ${this.version} pid ${process.pid} on ${this.platform}, up ${up} s`,
          );
          out.line(
            `memory: rss ${Math.round(mem.rss / 1024)} KiB, heap ${Math.round(mem.heapUsed / 1024)} KiB`,
          );
          out.line(
            `consoles: ${this.#consoles.size} now, ${st.consolesAdded} seen, ${st.consolesGone} gone; login shells restarted ${st.restarts}x`,
          );
          out.line(`sessions: ${st.sessionsStarted} started, ${st.sessionsEnded} ended`);
          out.line(
            `logins: ${
              Object.entries(st.logins)
                .map(([k, v]) => `${k}=${v}`)
                .join(' ') || 'none'
            }`,
          );
          out.line(
            `debug triggers: console=${st.debug.console} xenstore=${st.debug.xenstore} control=${st.debug.control}`,
          );
          const lc = this.logConsole.stats();
          out.line(`log lines: forwarded=${lc.forwarded} dropped=${lc.dropped}`);
        },
        'agent statistics',
      ),
    );
  }
}

export { DebugRegistry };
