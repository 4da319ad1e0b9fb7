import type { ConsoleInput } from './console-input.js';
import type { Pty } from './pty.js';
import { SIZE_QUERY, SizeProbe, type TermSize } from './term-size.js';

/** The console side of a session. */
export interface SessionConsole {
  input: ConsoleInput;
  /** Writes to the console; false asks us to wait for `onceDrain`. */
  write(data: Uint8Array | string): boolean;
  onceDrain(listener: () => void): void;
}

export interface ShellSessionOptions {
  console: SessionConsole;
  pty: Pty;
  /** Settles when the program on the pty exited. */
  exited: Promise<unknown>;
  /** Ends the session from our side (SIGHUP to the shell's process group, or a helper's). */
  hangup: () => void;
  /** The last resort when `hangup` did not end it within `killAfterMs`. */
  kill: () => void;
  /** No console input for this long ends the session (0: never). */
  idleTimeoutMs: number;
  /** After the program exited, wait this long at most for the rest of its output (EIO). */
  drainGraceMs: number;
  killAfterMs: number;
  /** Keep console input until the program writes something (login(1)'s Password: prompt). */
  holdInputUntilOutput?: boolean;
  /** Drop a first LF (the rest of a CRLF that ended the last prompt line). */
  skipLeadingLf?: boolean;
}

export type SessionEndReason = 'exit' | 'idle' | 'console-closed' | 'hangup';

export interface SessionResult {
  reason: SessionEndReason;
  /** False when output was still expected but the drain grace ran out (a background job held the pty). */
  drained: boolean;
}

/**
 * Moves bytes between the console and a pty until the program exits, then keeps reading the
 * pty until it is drained, so the last output always reaches the console before the next login
 * prompt. Console backpressure pauses the pty; the console can ask for the terminal's size at
 * any time (`querySize`), and the answer is taken out of the input stream.
 */
export class ShellSession {
  readonly #o: ShellSessionOptions;
  #probe: {
    probe: SizeProbe;
    resolve: (s: TermSize | null) => void;
    timer: NodeJS.Timeout;
  } | null = null;
  #idleTimer: NodeJS.Timeout | null = null;
  #end: ((reason: SessionEndReason) => void) | null = null;
  #ended = false;

  constructor(options: ShellSessionOptions) {
    this.#o = options;
  }

  async run(): Promise<SessionResult> {
    const { console: con, pty } = this.#o;
    let held: Buffer[] | null = this.#o.holdInputUntilOutput ? [] : null;
    let skipLf = this.#o.skipLeadingLf === true;

    con.input.setSink((chunk) => {
      this.#touch();
      let data = chunk;
      if (skipLf) {
        skipLf = false;
        if (data[0] === 0x0a) data = data.subarray(1);
      }
      if (this.#probe) {
        data = this.#probe.probe.feed(data);
        if (this.#probe.probe.done) this.#finishProbe();
      }
      if (data.length > 0) {
        if (held) held.push(Buffer.from(data));
        else pty.write(data);
      }
      return chunk.length;
    });
    pty.onData((out) => {
      if (held) {
        for (const h of held) pty.write(h);
        held = null;
      }
      if (!con.write(out)) {
        pty.pause();
        con.onceDrain(() => pty.resume());
      }
    });
    this.#touch();

    const ended = new Promise<SessionEndReason>((resolve) => {
      this.#end = resolve;
    });
    const offClose = con.input.onClose(() => this.#end?.('console-closed'));
    const reason = await Promise.race([this.#o.exited.then(() => 'exit' as const), ended]);
    offClose();
    this.#ended = true;
    this.#clearIdle();
    let drained = true;
    if (reason === 'exit') {
      drained = await this.#within(pty.drained, this.#o.drainGraceMs);
    } else {
      this.#o.hangup();
      const gone = await this.#within(this.#o.exited, this.#o.killAfterMs);
      if (!gone) {
        this.#o.kill();
        await this.#within(this.#o.exited, this.#o.killAfterMs);
      }
      drained = await this.#within(pty.drained, this.#o.drainGraceMs);
    }
    if (this.#probe) this.#finishProbe();
    con.input.setSink(null);
    if (held) for (const h of held) h.fill(0);
    return { reason, drained };
  }

  /** Ends the session from our side. */
  hangup(): void {
    this.#end?.('hangup');
  }

  /**
   * Asks the console's terminal for its size and resizes the pty when it answers within
   * `timeoutMs`. Input typed meanwhile still reaches the program.
   */
  querySize(timeoutMs: number): Promise<TermSize | null> {
    if (this.#ended) return Promise.resolve(null);
    if (this.#probe) this.#finishProbe();
    return new Promise((resolve) => {
      const probe = new SizeProbe();
      const timer = setTimeout(() => this.#finishProbe(), timeoutMs);
      this.#probe = {
        probe,
        timer,
        resolve: (size) => {
          if (size) this.#o.pty.resize(size);
          resolve(size);
        },
      };
      this.#o.console.write(SIZE_QUERY);
    });
  }

  #finishProbe(): void {
    const p = this.#probe;
    if (!p) return;
    this.#probe = null;
    clearTimeout(p.timer);
    const rest = p.probe.filter.release();
    if (rest.length > 0 && !this.#ended) this.#o.pty.write(rest);
    p.resolve(p.probe.size);
  }

  #touch(): void {
    const ms = this.#o.idleTimeoutMs;
    if (ms <= 0 || this.#ended) return;
    this.#clearIdle();
    this.#idleTimer = setTimeout(() => {
      this.#o.console.write('\r\nIdle timeout: logging out.\r\n');
      this.#end?.('idle');
    }, ms);
  }

  #clearIdle(): void {
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
  }

  /** True if `p` settled within `ms`. */
  async #within(p: Promise<unknown>, ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      p.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
      }),
    ]);
    clearTimeout(timer);
    return r;
  }
}
