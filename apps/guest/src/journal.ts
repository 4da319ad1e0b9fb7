import { type ChildProcess, spawn } from 'node:child_process';
import type { AgentLog } from './log.js';
import type { LogConsole } from './log-console.js';

/** What `--journal` runs: the journal from now on, one line per entry. */
export const JOURNAL_COMMAND = [
  'journalctl',
  '--follow',
  '--lines=0',
  '--output=short-iso',
] as const;

/**
 * Forwards the output lines of a long-running command (the systemd journal by default) to the log
 * console, prefixed `journal:`. The command is started again (after 5 s) if it exits.
 */
export class JournalForwarder {
  readonly #command: readonly string[];
  readonly #logConsole: LogConsole;
  readonly #log: AgentLog;
  #child: ChildProcess | null = null;
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;
  lines = 0;

  constructor(command: readonly string[], logConsole: LogConsole, log: AgentLog) {
    this.#command = command;
    this.#logConsole = logConsole;
    this.#log = log;
  }

  start(): void {
    if (this.#stopped) return;
    const [file, ...args] = this.#command;
    if (file === undefined) return;
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    this.#child = child;
    let rest = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop() ?? '';
      const own = `[${process.pid}]:`;
      for (const line of parts) {
        // Our own stderr is in the journal too, and already on the log console.
        if (line.includes(own)) continue;
        this.lines++;
        this.#logConsole.writeLine(`journal: ${line.replace(/\p{Cc}/gu, '?')}`);
      }
    });
    const again = (why: string) => {
      if (this.#child !== child) return;
      this.#child = null;
      if (this.#stopped) return;
      this.#log.warn(`${file} ended (${why}); starting it again in 5 s`);
      this.#timer = setTimeout(() => this.start(), 5000);
      this.#timer.unref();
    };
    child.on('error', (error) => again(error.message));
    child.on('exit', (code, signal) => again(signal ?? `status ${code}`));
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    const child = this.#child;
    this.#child = null;
    if (child && child.exitCode === null && child.pid !== undefined) child.kill('SIGTERM');
  }
}
