import { channel } from 'node:diagnostics_channel';
import { existsSync, readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import {
  type Account,
  currentAccount,
  isRoot,
  loginArgv0,
  lookupAccount,
  sessionEnv,
} from './accounts.js';
import { type AuditRecord, type AuditSink, systemLogAudit } from './audit.js';
import { ConsoleInput } from './console-input.js';
import { LoginShellError } from './errors.js';
import { DEFAULT_ISSUE, expandIssue, type IssueContext, systemIssueContext } from './issue.js';
import { LineEditor as Editor, type LineEditor } from './line-editor.js';
import { native } from './native.js';
import { defaultPamHelperPath, PamHelperProcess } from './pam-helper-process.js';
import { Pty, PtyProcess } from './pty.js';
import { type SessionConsole, type SessionResult, ShellSession } from './session.js';
import { SIZE_QUERY, SizeProbe, type TermSize } from './term-size.js';
import { LoginThrottle, type ThrottleOptions } from './throttle.js';
import { isValidUserName, readUsersFile, verifyPassword } from './users-file.js';

/**
 * - `login`: the system's login(1) on a pty with the name read at our prompt (`login -p -- NAME`,
 *   as agetty runs it), so PAM, lastlog, motd, utmp and the user's shell all apply. Needs root.
 * - `pam`: a PAM conversation of our own (multi-prompt, account checks, password change when
 *   expired, a session), in a helper process; the shell runs as the user. Needs root.
 * - `file`: a users file of scrypt hashes (see users-file.ts). As root the name must also be a
 *   local account, which the shell runs as; otherwise the shell runs as the current user.
 * - `none`: no password (`allowAutologin` must be set); a warning is shown and audited.
 */
export type LoginBackend = 'login' | 'pam' | 'file' | 'none';

export interface LoginShellOptions {
  /** The console's name: the banner's `\l`, the audit's `console=`, the throttle key. */
  console: string;
  /** Default: `login` as root, else `file`. */
  backend?: LoginBackend;
  /** The users file of the `file` backend. */
  usersFile?: string;
  /** PAM service of the `pam` backend (default `login`). */
  pamService?: string;
  /** Path of the PAM helper script (default: next to this module). */
  pamHelper?: string;
  /** Let PAM accept an empty password where the service allows it (`nullok`). Default false. */
  allowNullPassword?: boolean;
  /** login(1) for the `login` backend (default /bin/login or /usr/bin/login). */
  loginProgram?: string;
  /** Pass `-p` to login(1) so TERM (and `env`) reach the session (default true, as agetty). */
  loginPreserveEnv?: boolean;
  /** Required for the `none` backend. */
  allowAutologin?: boolean;
  /** Who `none` logs in (default: the current user). */
  autologinUser?: string;
  /** The banner template with agetty escapes; `false` for none. Default `DEFAULT_ISSUE`. */
  issue?: string | false;
  /** Read the banner template from this file on every prompt (e.g. `/etc/issue`), like agetty -f. */
  issueFile?: string;
  /** The prompt template (default `\n login: `). */
  prompt?: string;
  /** TERM for sessions (default `vt220`, as serial-getty). */
  term?: string;
  /** Extra environment for sessions (e.g. LANG). */
  env?: Record<string, string>;
  /** Ask the terminal for its size after the login name (default true). */
  probeSize?: boolean;
  /** How long to wait for the terminal's answer (default 300 ms). */
  sizeProbeTimeoutMs?: number;
  /** The pty size when the terminal does not say (default 80x24). */
  defaultSize?: TermSize;
  /** Give up on a prompt after this long without an answer (default 60 s; 0: never). */
  loginTimeoutMs?: number;
  /** End a session after this long without console input (default 0: never). */
  idleTimeoutMs?: number;
  maxNameBytes?: number;
  maxPasswordBytes?: number;
  /** Throttling of failures; pass one `LoginThrottle` to several consoles to share it. */
  throttle?: ThrottleOptions | LoginThrottle;
  /** Where audit records go (default: the system log through logger(1)). */
  audit?: AuditSink;
  /** After a shell exited, wait this long at most for the rest of its output (default 2 s). */
  drainGraceMs?: number;
  /** After a hangup, wait this long before SIGKILL (default 3 s). */
  killAfterMs?: number;
  /** Replaces the failure delay's sleep (tests). */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Replaces the banner's facts (tests). */
  issueContext?: () => IssueContext;
}

/** What a login shell is doing (for an agent's "sessions" view). */
export interface LoginShellStatus {
  console: string;
  backend: LoginBackend;
  /** The running session, or null at the prompt. With `login`, `user` is the name typed. */
  session: { user: string; pty: string; since: Date } | null;
  /** The terminal size last learnt (or the default). */
  size: TermSize;
}

/** Events for observers (`node:diagnostics_channel`); libraries do not log. */
export const loginShellChannel = channel('xencons:login-shell');

type LineResult =
  | { type: 'line'; text: string; line: Buffer; editor: LineEditor }
  | { type: 'interrupt' | 'eof' | 'timeout' | 'closed' };

interface Resolved {
  console: string;
  backend: LoginBackend;
  usersFile: string | undefined;
  pamService: string;
  pamHelper: string | undefined;
  allowNullPassword: boolean;
  loginProgram: string;
  loginPreserveEnv: boolean;
  autologinUser: string | undefined;
  issue: string | false;
  issueFile: string | undefined;
  prompt: string;
  term: string;
  env: Record<string, string>;
  probeSize: boolean;
  sizeProbeTimeoutMs: number;
  defaultSize: TermSize;
  loginTimeoutMs: number;
  idleTimeoutMs: number;
  maxNameBytes: number;
  maxPasswordBytes: number;
  drainGraceMs: number;
  killAfterMs: number;
}

const defaultSleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });

/**
 * A getty over any Duplex: banner, `login:`, `Password:`, a backend, a shell session, and the
 * banner again after logout, until the stream ends or `stop()`.
 *
 * ```ts
 * const shell = new LoginShell(consoleStream, { console: 'hvc1', backend: 'pam' });
 * await shell.run();
 * ```
 */
export class LoginShell {
  readonly options: Readonly<Resolved>;
  readonly #stream: Duplex;
  readonly #input: ConsoleInput;
  readonly #throttle: LoginThrottle;
  readonly #audit: AuditSink;
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly #issueContext: () => IssueContext;
  readonly #abort = new AbortController();
  readonly #sessionConsole: SessionConsole;
  #session: ShellSession | null = null;
  #sessionInfo: LoginShellStatus['session'] = null;
  #running: Promise<void> | null = null;
  #size: TermSize;
  #skipLf = false;

  constructor(stream: Duplex, options: LoginShellOptions) {
    this.options = resolve(options);
    this.#stream = stream;
    this.#input = new ConsoleInput(stream);
    this.#throttle =
      options.throttle instanceof LoginThrottle
        ? options.throttle
        : new LoginThrottle(options.throttle);
    this.#audit = options.audit ?? systemLogAudit();
    this.#sleep = options.sleep ?? defaultSleep;
    this.#issueContext = options.issueContext ?? (() => systemIssueContext(this.options.console));
    this.#size = { ...this.options.defaultSize };
    this.#sessionConsole = {
      input: this.#input,
      write: (d) => this.#write(d),
      onceDrain: (l) => this.#stream.once('drain', l),
    };
    // Errors surface as 'close' through ConsoleInput; without a listener they would throw.
    stream.on('error', () => {});
  }

  /** The terminal size last learnt (or the default). */
  get size(): TermSize {
    return { ...this.#size };
  }

  /** True while a shell session runs. */
  get inSession(): boolean {
    return this.#session !== null;
  }

  status(): LoginShellStatus {
    const o = this.options;
    return {
      console: o.console,
      backend: o.backend,
      session: this.#sessionInfo && { ...this.#sessionInfo },
      size: { ...this.#size },
    };
  }

  /** Serves logins until the console stream ends or `stop()` is called. */
  run(): Promise<void> {
    this.#running ??= this.#loop();
    return this.#running;
  }

  /** Hangs up any session and ends `run()`. */
  async stop(): Promise<void> {
    this.#abort.abort();
    this.#session?.hangup();
    await this.#running;
  }

  /** Asks the terminal for its size again (during a session the pty is resized). */
  async querySize(): Promise<TermSize | null> {
    const s = this.#session;
    if (!s) return null;
    const size = await s.querySize(this.options.sizeProbeTimeoutMs);
    if (size) this.#size = size;
    return size;
  }

  async #loop(): Promise<void> {
    try {
      while (!this.#abort.signal.aborted && !this.#input.closed) {
        try {
          await this.#attempt();
        } catch (err) {
          loginShellChannel.publish({ console: this.options.console, event: 'error', error: err });
          this.#write('\r\nlogin: internal error, try again\r\n');
          await this.#sleep(1000, this.#abort.signal);
        }
      }
    } finally {
      this.#input.detach();
    }
  }

  /** One pass: banner, prompt, authentication, session. */
  async #attempt(): Promise<void> {
    const o = this.options;
    if (o.backend === 'none') return this.#autologin();
    const ctx = this.#issueContext();
    this.#writeBanner(ctx);
    let name = '';
    for (;;) {
      const r = await this.#readLine(expandIssue(o.prompt, ctx), true, o.maxNameBytes);
      if (r.type !== 'line') return this.#abandoned(r.type);
      name = r.text;
      r.editor.wipe();
      if (name !== '') break;
    }
    const locked = this.#throttle.lockedFor(o.console);
    if (locked > 0) {
      this.#record(this.#knownName(name), 'locked', `${Math.ceil(locked / 1000)} s left`);
      this.#write(
        `\r\nToo many failed logins on ${o.console}; try again in ${Math.ceil(locked / 1000)} s.\r\n`,
      );
      return;
    }
    const size = await this.#probeSize();
    switch (o.backend) {
      case 'login':
        return this.#viaLogin(name, size);
      case 'pam':
        return this.#viaPam(name, size);
      case 'file':
        return this.#viaFile(name, size);
    }
  }

  #abandoned(type: 'interrupt' | 'eof' | 'timeout' | 'closed'): void {
    if (type === 'timeout') {
      this.#write(
        `\r\nLogin timed out after ${Math.round(this.options.loginTimeoutMs / 1000)} seconds.\r\n`,
      );
    }
  }

  // ---- backends -----------------------------------------------------------------------------

  async #viaFile(name: string, size: TermSize): Promise<void> {
    const o = this.options;
    const r = await this.#readLine('Password: ', false, o.maxPasswordBytes);
    if (r.type !== 'line') return this.#abandoned(r.type);
    let ok = false;
    let known = false;
    try {
      const entries = readUsersFile(o.usersFile!);
      known = entries.some((e) => e.name === name);
      ok = await verifyPassword(entries, name, r.line);
    } finally {
      r.editor.wipe();
    }
    if (!ok) return this.#failed(known ? name : 'UNKNOWN', 0);
    const account = isRoot() ? lookupAccount(name) : currentAccount();
    if (!account) {
      this.#record(name, 'error', 'no local account with this name');
      this.#write(`\r\nNo local account for ${name}.\r\n`);
      return;
    }
    this.#throttle.success(o.console);
    this.#record(name, 'success', account.name === name ? undefined : `as ${account.name}`);
    await this.#shell(account, size);
    this.#record(name, 'logout');
  }

  async #autologin(): Promise<void> {
    const o = this.options;
    const ctx = this.#issueContext();
    this.#writeBanner(ctx);
    const account = o.autologinUser && isRoot() ? lookupAccount(o.autologinUser) : currentAccount();
    if (!account) {
      throw new LoginShellError(
        'ERR_LOGIN_CONFIG',
        `autologin user ${o.autologinUser} does not exist`,
      );
    }
    const r = await this.#readLine(
      `${ctx.nodename} autologin as ${account.name}: press Enter `,
      true,
      o.maxNameBytes,
    );
    if (r.type !== 'line') return this.#abandoned(r.type);
    r.editor.wipe();
    this.#write(
      `WARNING: ${o.console} logs in as ${account.name} without a password (backend "none").\r\n`,
    );
    this.#record(account.name, 'autologin');
    const size = await this.#probeSize();
    await this.#shell(account, size);
    this.#record(account.name, 'logout');
  }

  async #viaLogin(name: string, size: TermSize): Promise<void> {
    const o = this.options;
    if (!isValidUserName(name)) {
      // login(1) would ask for a password anyway; refuse the same way without running it.
      const r = await this.#readLine('Password: ', false, o.maxPasswordBytes);
      if (r.type !== 'line') return this.#abandoned(r.type);
      r.editor.wipe();
      return this.#failed('UNKNOWN', 0);
    }
    const pty = Pty.open(size);
    let proc: PtyProcess;
    try {
      const env: Record<string, string> = { ...o.env, TERM: o.term };
      const args = ['login', ...(o.loginPreserveEnv ? ['-p'] : []), '--', name];
      proc = PtyProcess.spawn(pty, { file: o.loginProgram, args, env });
    } catch (err) {
      pty.close();
      throw err;
    }
    pty.closeSlave();
    this.#record(this.#knownName(name), 'delegated');
    const result = await this.#runSession(
      name,
      pty,
      proc.exited,
      () => proc.signalGroup('SIGHUP'),
      () => proc.signalGroup('SIGKILL'),
      true,
    );
    const exit = proc.exit;
    this.#record(
      this.#knownName(name),
      'logout',
      `login(1) ended: ${exit?.signal ?? `status ${exit?.exitCode}`}, ${result.reason}`,
    );
  }

  async #viaPam(name: string, size: TermSize): Promise<void> {
    const o = this.options;
    const auditName = this.#knownName(name);
    if (!isValidUserName(name)) {
      const r = await this.#readLine('Password: ', false, o.maxPasswordBytes);
      if (r.type !== 'line') return this.#abandoned(r.type);
      r.editor.wipe();
      return this.#failed('UNKNOWN', 0);
    }
    const pty = Pty.open(size);
    const helper = PamHelperProcess.start({
      service: o.pamService,
      user: name,
      tty: pty.path,
      slaveFd: pty.slaveFd,
      env: { PATH: '/usr/local/bin:/usr/bin:/bin', ...o.env, TERM: o.term },
      allowNullPassword: o.allowNullPassword,
      ...(o.pamHelper === undefined ? {} : { helperPath: o.pamHelper }),
    });
    pty.closeSlave();
    let shellPid = 0;
    let sessionUser = name;
    let endSeen: () => void = () => {};
    const ended = new Promise<void>((resolve) => {
      endSeen = resolve;
    });
    let onAbort = () => {};
    const stopped = new Promise<{ type: 'stopped' }>((resolve) => {
      onAbort = () => resolve({ type: 'stopped' });
      this.#abort.signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      for (;;) {
        const e = await Promise.race([helper.next(), stopped]);
        if (e.type === 'stopped') return;
        if (e.type === 'prompt') {
          const r = await this.#readLine(
            e.text,
            e.echo,
            e.echo ? o.maxNameBytes : o.maxPasswordBytes,
          );
          if (r.type !== 'line') {
            helper.cancel();
            helper.kill();
            return this.#abandoned(r.type);
          }
          helper.answer(r.line);
          r.editor.wipe();
        } else if (e.type === 'message') {
          this.#write(`${e.text.replace(/\r?\n/g, '\r\n')}\r\n`);
        } else if (e.type === 'result') {
          const res = e.result;
          if (!res.ok) {
            if (res.stage === 'auth' || res.stage === 'account' || res.stage === 'chauthtok') {
              return this.#failed(auditName, res.delayMs, `${res.stage}: ${res.message}`);
            }
            this.#record(auditName, 'error', `${res.stage}: ${res.message}`);
            this.#write(`\r\nlogin: ${res.message}\r\n`);
            return;
          }
          this.#throttle.success(o.console);
          sessionUser = res.user ?? name;
          this.#record(sessionUser, 'success');
        } else if (e.type === 'started') {
          shellPid = e.pid;
          // The rest of the helper's events (ended / gone) end the session.
          void (async () => {
            for (;;) {
              const next = await helper.next();
              if (next.type === 'ended' || next.type === 'gone') break;
            }
            endSeen();
          })();
          const signal = (sig: NodeJS.Signals) => {
            try {
              process.kill(-shellPid, sig);
            } catch {
              // Gone already.
            }
          };
          await this.#runSession(
            sessionUser,
            pty,
            Promise.race([ended, helper.exited]),
            () => signal('SIGHUP'),
            () => signal('SIGKILL'),
            false,
          );
          this.#record(sessionUser, 'logout');
          return;
        } else {
          // ended before a shell started, or the helper died.
          const detail = e.type === 'gone' ? e.detail : (e.end.error ?? 'session ended');
          this.#record(auditName, 'error', detail);
          this.#write('\r\nlogin: session could not start\r\n');
          return;
        }
      }
    } finally {
      this.#abort.signal.removeEventListener('abort', onAbort);
      pty.close();
      // The helper closes the PAM session once the shell is gone; give it time, then end it.
      const timer = new AbortController();
      await Promise.race([helper.exited, defaultSleep(o.killAfterMs, timer.signal)]);
      timer.abort();
      helper.kill();
    }
  }

  // ---- shared steps ---------------------------------------------------------------------------

  /** A shell for `account` on a new pty (credentials switched when root). */
  async #shell(account: Account, size: TermSize): Promise<void> {
    const o = this.options;
    const pty = Pty.open(size);
    let proc: PtyProcess;
    try {
      proc = PtyProcess.spawn(pty, {
        file: account.shell,
        args: [loginArgv0(account.shell)],
        env: sessionEnv(account, o.term, o.env),
        cwd: account.home,
        ...(isRoot()
          ? { credentials: { uid: account.uid, gid: account.gid, groups: account.groups } }
          : {}),
      });
    } catch (err) {
      pty.close();
      throw err;
    }
    pty.closeSlave();
    await this.#runSession(
      account.name,
      pty,
      proc.exited,
      () => proc.signalGroup('SIGHUP'),
      () => proc.signalGroup('SIGKILL'),
      false,
    );
  }

  async #runSession(
    user: string,
    pty: Pty,
    exited: Promise<unknown>,
    hangup: () => void,
    kill: () => void,
    holdInputUntilOutput: boolean,
  ): Promise<SessionResult> {
    const o = this.options;
    const session = new ShellSession({
      console: this.#sessionConsole,
      pty,
      exited,
      hangup,
      kill,
      idleTimeoutMs: o.idleTimeoutMs,
      drainGraceMs: o.drainGraceMs,
      killAfterMs: o.killAfterMs,
      holdInputUntilOutput,
      skipLeadingLf: this.#skipLf,
    });
    this.#skipLf = false;
    this.#session = session;
    this.#sessionInfo = { user, pty: pty.path, since: new Date() };
    loginShellChannel.publish({ console: o.console, event: 'session-start', user, pty: pty.path });
    if (this.#abort.signal.aborted) session.hangup();
    try {
      const result = await session.run();
      loginShellChannel.publish({ console: o.console, event: 'session-end', ...result });
      return result;
    } finally {
      this.#session = null;
      this.#sessionInfo = null;
      pty.close();
    }
  }

  /** A failed attempt: audit, growing delay (input discarded), the message, maybe a lockout. */
  async #failed(auditUser: string, backendDelayMs: number, detail?: string): Promise<void> {
    const o = this.options;
    this.#record(auditUser, 'failure', detail);
    const v = this.#throttle.failure(o.console);
    await this.#sleep(Math.max(v.delayMs, backendDelayMs), this.#abort.signal);
    this.#input.flush();
    this.#write('\r\nLogin incorrect\r\n');
    if (v.lockedForMs > 0) {
      this.#write(
        `Too many failed logins on ${o.console}; locked for ${Math.ceil(v.lockedForMs / 1000)} s.\r\n`,
      );
    }
  }

  /** Reads one line with the pre-login discipline. */
  #readLine(prompt: string, echo: boolean, maxBytes: number): Promise<LineResult> {
    if (prompt) this.#write(prompt);
    const editor = new Editor({ echo, maxBytes, skipLeadingLf: this.#skipLf });
    this.#skipLf = false;
    return new Promise((resolve) => {
      let done = false;
      let timer: NodeJS.Timeout | undefined;
      const finish = (r: LineResult) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        offClose();
        this.#abort.signal.removeEventListener('abort', onAbort);
        this.#input.setSink(null);
        if (r.type !== 'line') editor.wipe();
        resolve(r);
      };
      const onAbort = () => finish({ type: 'closed' });
      const offClose = this.#input.onClose(onAbort);
      this.#abort.signal.addEventListener('abort', onAbort);
      if (this.options.loginTimeoutMs > 0) {
        timer = setTimeout(() => finish({ type: 'timeout' }), this.options.loginTimeoutMs);
      }
      this.#input.setSink((chunk) => {
        if (done) return 0;
        const r = editor.feed(chunk);
        if (r.echo.length > 0) this.#write(r.echo);
        if (r.event?.type === 'line') {
          this.#skipLf = r.event.awaitingLf;
          // Only echoed lines become strings; a secret stays in the editor's buffer.
          const text = echo ? r.event.line.toString('utf8') : '';
          finish({ type: 'line', text, line: r.event.line, editor });
        } else if (r.event) {
          finish({ type: r.event.type });
        }
        return r.consumed;
      });
    });
  }

  /** Asks the terminal for its size (unless disabled); typeahead survives. */
  async #probeSize(): Promise<TermSize> {
    const o = this.options;
    if (!o.probeSize || this.#input.closed) return { ...this.#size };
    const probe = new SizeProbe();
    const passed: Buffer[] = [];
    this.#write(SIZE_QUERY);
    await new Promise<void>((resolve) => {
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        offClose();
        this.#input.setSink(null);
        resolve();
      };
      const timer = setTimeout(finish, o.sizeProbeTimeoutMs);
      const offClose = this.#input.onClose(finish);
      this.#input.setSink((chunk) => {
        passed.push(probe.feed(chunk));
        if (probe.done) finish();
        return chunk.length;
      });
    });
    this.#input.unshift(Buffer.concat([...passed, probe.filter.release()]));
    const size = probe.size;
    loginShellChannel.publish({ console: o.console, event: 'size', size });
    if (size) this.#size = size;
    return { ...this.#size };
  }

  #writeBanner(ctx: IssueContext): void {
    const o = this.options;
    let template: string | false = o.issue;
    if (o.issueFile !== undefined) {
      try {
        template = readFileSync(o.issueFile, 'utf8');
      } catch {
        template = o.issue;
      }
    }
    this.#write('\r\n');
    if (template !== false) this.#write(expandIssue(template, ctx));
  }

  /** The name for the audit: itself when it names a local account, else UNKNOWN (it may be a password). */
  #knownName(name: string): string {
    if (!isValidUserName(name)) return 'UNKNOWN';
    try {
      return lookupAccount(name) ? name : 'UNKNOWN';
    } catch {
      return 'UNKNOWN';
    }
  }

  #record(user: string, outcome: AuditRecord['outcome'], detail?: string): void {
    const record: AuditRecord = {
      time: new Date(),
      console: this.options.console,
      user,
      backend: this.options.backend,
      outcome,
      ...(detail === undefined ? {} : { detail }),
    };
    loginShellChannel.publish({ console: this.options.console, event: 'audit', record });
    this.#audit(record);
  }

  #write(data: Uint8Array | string): boolean {
    const s = this.#stream;
    if (s.destroyed || !s.writable) return true;
    return s.write(data);
  }
}

function firstExisting(paths: string[]): string | undefined {
  return paths.find((p) => existsSync(p));
}

function resolve(o: LoginShellOptions): Resolved {
  const root = isRoot();
  const backend = o.backend ?? (root ? 'login' : 'file');
  const bad = (code: 'ERR_LOGIN_CONFIG' | 'ERR_LOGIN_BACKEND_UNAVAILABLE', msg: string) =>
    new LoginShellError(code, msg);
  if (!o.console) throw bad('ERR_LOGIN_CONFIG', 'console (a name for the console) is required');
  const loginProgram =
    o.loginProgram ?? firstExisting(['/bin/login', '/usr/bin/login']) ?? '/bin/login';
  switch (backend) {
    case 'login':
      if (!root)
        throw bad(
          'ERR_LOGIN_BACKEND_UNAVAILABLE',
          'the login backend runs login(1), which needs root',
        );
      if (!existsSync(loginProgram))
        throw bad('ERR_LOGIN_BACKEND_UNAVAILABLE', `${loginProgram} does not exist`);
      break;
    case 'pam': {
      if (!root) throw bad('ERR_LOGIN_BACKEND_UNAVAILABLE', 'the pam backend needs root');
      const why = native().pamUnavailableReason();
      if (why !== null) throw bad('ERR_LOGIN_BACKEND_UNAVAILABLE', why);
      if (o.pamHelper !== undefined && !existsSync(o.pamHelper)) {
        throw bad('ERR_LOGIN_BACKEND_UNAVAILABLE', `the PAM helper ${o.pamHelper} does not exist`);
      }
      // Fails now, not at the first login, when a bundler left the helper behind.
      if (o.pamHelper === undefined) defaultPamHelperPath();
      break;
    }
    case 'file':
      if (!o.usersFile) throw bad('ERR_LOGIN_CONFIG', 'the file backend needs usersFile');
      break;
    case 'none':
      if (o.allowAutologin !== true) {
        throw bad(
          'ERR_LOGIN_CONFIG',
          'the none backend logs in without a password: set allowAutologin',
        );
      }
      break;
    default:
      throw bad('ERR_LOGIN_CONFIG', `unknown backend ${JSON.stringify(backend)}`);
  }
  const positive = (v: number | undefined, d: number, name: string) => {
    const x = v ?? d;
    if (!Number.isFinite(x) || x < 0) throw bad('ERR_LOGIN_CONFIG', `${name} must be >= 0`);
    return x;
  };
  return {
    console: o.console,
    backend,
    usersFile: o.usersFile,
    pamService: o.pamService ?? 'login',
    pamHelper: o.pamHelper,
    allowNullPassword: o.allowNullPassword === true,
    loginProgram,
    loginPreserveEnv: o.loginPreserveEnv ?? true,
    autologinUser: o.autologinUser,
    issue: o.issue ?? DEFAULT_ISSUE,
    issueFile: o.issueFile,
    prompt: o.prompt ?? '\\n login: ',
    term: o.term ?? 'vt220',
    env: { ...(o.env ?? {}) },
    probeSize: o.probeSize ?? true,
    sizeProbeTimeoutMs: positive(o.sizeProbeTimeoutMs, 300, 'sizeProbeTimeoutMs'),
    defaultSize: o.defaultSize ?? { cols: 80, rows: 24 },
    loginTimeoutMs: positive(o.loginTimeoutMs, 60_000, 'loginTimeoutMs'),
    idleTimeoutMs: positive(o.idleTimeoutMs, 0, 'idleTimeoutMs'),
    maxNameBytes: Math.max(1, positive(o.maxNameBytes, 256, 'maxNameBytes')),
    maxPasswordBytes: Math.max(1, positive(o.maxPasswordBytes, 512, 'maxPasswordBytes')),
    drainGraceMs: positive(o.drainGraceMs, 2000, 'drainGraceMs'),
    killAfterMs: positive(o.killAfterMs, 3000, 'killAfterMs'),
  };
}
