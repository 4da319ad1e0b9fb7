// Shared by the test files (not exported from the package).
import type { Duplex } from 'node:stream';
import { duplexPair } from 'node:stream';
import { loadNative, nativeUnavailableReason } from '@xencons/native';
import { requirement } from '@xencons/test-utils';
import type { IssueContext } from './issue.js';

/** Suites that spawn programs on ptys need the native core. */
export const nativeCore = requirement(
  'the native addon (pnpm --filter @xencons/native build; needs Rust)',
  loadNative() ? null : nativeUnavailableReason(),
);

/**
 * The far end of a console for tests: a Duplex pair; everything the login shell writes is kept
 * in `transcript`; `type()` sends input; `waitFor()` waits for output (its deadline only keeps a
 * broken test from hanging; nothing is asserted about time).
 */
export class FakeTerminal {
  readonly console: Duplex;
  readonly #far: Duplex;
  #out = '';
  #waiters: (() => void)[] = [];
  /** Answers size queries with this size (null: stays silent). */
  answerSize: { cols: number; rows: number } | null = null;

  constructor() {
    const [a, b] = duplexPair();
    this.console = a;
    this.#far = b;
    b.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      this.#out += text;
      if (this.answerSize && text.includes('\x1b[6n')) {
        const { cols, rows } = this.answerSize;
        b.write(`\x1b[8;${rows};${cols}t\x1b[${rows};${cols}R`);
      }
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  get transcript(): string {
    return this.#out;
  }

  type(text: string | Uint8Array): void {
    this.#far.write(text);
  }

  /** Ends the terminal's side (the console goes away). */
  hangUp(): void {
    this.#far.end();
    this.#far.destroy();
  }

  /** Waits until the output after `from` matches `pattern`; returns the index just past the match. */
  async waitFor(pattern: RegExp | string, from = 0, deadlineMs = 20_000): Promise<number> {
    const started = Date.now();
    for (;;) {
      const rest = this.#out.slice(from);
      const m = typeof pattern === 'string' ? rest.indexOf(pattern) : rest.search(pattern);
      if (m >= 0) {
        const len =
          typeof pattern === 'string'
            ? pattern.length
            : (rest.slice(m).match(pattern)?.[0].length ?? 0);
        return from + m + len;
      }
      if (Date.now() - started > deadlineMs) {
        throw new Error(
          `no ${String(pattern)} in the console output after ${deadlineMs} ms; output since ${from}:\n${JSON.stringify(rest.slice(-2000))}`,
        );
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 200);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

/** A fixed banner context, so transcripts do not depend on the machine. */
export const testIssueContext = (): IssueContext => ({
  nodename: 'testhost',
  sysname: 'Linux',
  release: '6.1.0',
  version: '#1',
  machine: 'x86_64',
  tty: 'testcon',
  now: new Date(2026, 0, 1, 0, 0, 0),
  osRelease: { PRETTY_NAME: 'Test OS' },
});

/** A sleep that returns at once and records what it was asked for. */
export function recordingSleep() {
  const calls: number[] = [];
  const sleep = async (ms: number) => {
    calls.push(ms);
  };
  return { sleep, calls };
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: ESC starts the sequences stripped
const CSI = /\x1b\[[0-9;?]*[a-zA-Z]/g;
/** A transcript without CSI sequences (bash's bracketed-paste switches and the like). */
export const plain = (text: string) => text.replace(CSI, '');
const regexpQuote = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** True when `lines` appear as whole consecutive output lines in `text`. */
export const hasLines = (text: string, ...lines: string[]) =>
  new RegExp(`[\\r\\n]${lines.map(regexpQuote).join('\\r\\n')}\\r\\n`).test(plain(text));
