import type { Duplex } from 'node:stream';
import type { LoginShellStatus } from '@xencons/login-shell';
import type { AgentConsole } from './consoles/types.js';
import { HotkeyFilter } from './hotkeys.js';

/** What the worker needs of a login shell (`LoginShell` from @xencons/login-shell). */
export interface ShellLike {
  run(): Promise<void>;
  stop(): Promise<void>;
  status(): LoginShellStatus;
}

export type ShellFactory = (stream: Duplex, console: AgentConsole) => ShellLike;

export interface ConsoleWorkerOptions {
  makeShell: ShellFactory;
  /** In-band hotkey prefix byte, or null. */
  hotkeyPrefix: number | null;
  isKey: (key: string) => boolean;
  onKey: (key: string, worker: ConsoleWorker) => void;
  /** A login shell ended while its console was still there (a crash): it is started again. */
  onRestart: (worker: ConsoleWorker, error: unknown, delayMs: number) => void;
  /** First restart delay (ms, default 1000); doubles up to `maxRestartDelayMs` (30000). */
  restartDelayMs?: number;
  maxRestartDelayMs?: number;
}

/**
 * One console's login service: a hotkey filter over the console, a login shell over the filter,
 * and a loop that starts the login shell again when it ends while the console is still there
 * (with a growing delay, reset once one ran a minute). When the console goes away the session is
 * hung up (SIGHUP to the shell's process group) and the loop ends.
 */
export class ConsoleWorker {
  readonly console: AgentConsole;
  readonly filter: HotkeyFilter;
  readonly #options: ConsoleWorkerOptions;
  #shell: ShellLike | null = null;
  #stopping = false;
  #gone: string | null = null;
  #running: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  restarts = 0;

  constructor(console: AgentConsole, options: ConsoleWorkerOptions) {
    this.console = console;
    this.#options = options;
    this.filter = new HotkeyFilter(console.stream, {
      prefix: options.hotkeyPrefix,
      isKey: options.isKey,
      onKey: (key) => options.onKey(key, this),
    });
    void console.gone.then((why) => {
      this.#gone = why;
      this.#wake?.();
      void this.#shell?.stop();
    });
  }

  /** Why the console went away, once it has. */
  get goneReason(): string | null {
    return this.#gone;
  }

  status(): LoginShellStatus | null {
    return this.#shell?.status() ?? null;
  }

  /** Writes text to the console, outside of the login shell (debug output). */
  write(text: string): void {
    const stream = this.console.stream;
    if (!stream.destroyed && stream.writable) stream.write(text);
  }

  run(): Promise<void> {
    this.#running ??= this.#loop();
    return this.#running;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    await this.#shell?.stop();
    await this.#running;
  }

  #over(): boolean {
    return this.#stopping || this.#gone !== null || this.filter.destroyed;
  }

  async #loop(): Promise<void> {
    const first = this.#options.restartDelayMs ?? 1000;
    const max = this.#options.maxRestartDelayMs ?? 30_000;
    let delay = first;
    while (!this.#over()) {
      const shell = this.#options.makeShell(this.filter, this.console);
      this.#shell = shell;
      const started = Date.now();
      let error: unknown = null;
      try {
        await shell.run();
      } catch (e) {
        error = e;
      }
      if (this.#over()) break;
      if (Date.now() - started > 60_000) delay = first;
      this.restarts++;
      this.#options.onRestart(this, error, delay);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = null;
      delay = Math.min(delay * 2, max);
    }
    this.filter.destroy();
  }
}
