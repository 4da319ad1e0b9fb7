import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';

/**
 * A program driven like a person at a terminal: `send` types, `expect` waits for text to appear
 * after a mark. Everything the program printed is kept (`text`) for checks afterwards. The
 * program runs in its own process group, which `close()` kills, whatever state it is in.
 */
export class Driven {
  readonly child: ChildProcessWithoutNullStreams;
  text = '';
  #from = 0;
  #wake: (() => void) | null = null;
  exited: Promise<number | null>;

  constructor(command: string, args: string[], env: NodeJS.ProcessEnv) {
    this.child = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    const add = (chunk: Buffer) => {
      this.text += chunk.toString('latin1');
      this.#wake?.();
    };
    this.child.stdout.on('data', add);
    this.child.stderr.on('data', add);
    this.child.stdin.on('error', () => {});
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  /** Types `text` (only what comes after this is searched by the next `expect`). */
  send(text: string): void {
    this.#from = this.text.length;
    this.child.stdin.write(text);
  }

  /** Moves the search start to now. */
  mark(): void {
    this.#from = this.text.length;
  }

  /** Waits until `pattern` appears after the mark; moves the mark past it; returns the match. */
  async expect(pattern: string | RegExp, what: string, ms = 20_000): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const rest = this.text.slice(this.#from);
      const m =
        typeof pattern === 'string'
          ? rest.includes(pattern)
            ? { index: rest.indexOf(pattern), 0: pattern }
            : null
          : pattern.exec(rest);
      if (m) {
        this.#from += m.index + m[0].length;
        return m[0];
      }
      const left = deadline - Date.now();
      if (left <= 0 || this.child.exitCode !== null) {
        throw new Error(
          `waiting for ${what} (${String(pattern)}): ${this.child.exitCode !== null ? `the program exited (${this.child.exitCode})` : 'timed out'}; last output: ${JSON.stringify(rest.slice(-600))}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 250));
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = null;
    }
  }

  /** Ends stdin and waits for the program (killing its group after `ms`). */
  async finish(ms = 10_000): Promise<number | null> {
    this.child.stdin.end();
    const timer = setTimeout(() => this.close(), ms);
    const code = await this.exited;
    clearTimeout(timer);
    this.close();
    return code;
  }

  /** Kills the program's process group (idempotent). */
  close(): void {
    try {
      if (this.child.pid !== undefined) process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}
