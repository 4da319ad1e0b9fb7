import { Duplex } from 'node:stream';

/** What the scanner found in the console input: bytes for the login/shell, or a hotkey. */
export type ScanPiece = { type: 'data'; bytes: Buffer } | { type: 'key'; key: string };

/**
 * `^^` → 0x1e, `^O` → 0x0f, `^?` → 0x7f. The in-band hotkey prefix is one control character:
 * C0 controls never occur inside UTF-8 text, and no terminal reply (size answers, function keys)
 * contains one other than ESC, which is refused for that reason, as are the characters a shell
 * or the login prompt need (Tab, Backspace, Enter, Ctrl-C, Ctrl-D, Ctrl-U, Ctrl-W) and ^] (the
 * detach key of `xencons console` and xenconsole). `off` means no in-band hotkeys.
 */
export function parseHotkeyPrefix(text: string): number | null {
  if (text === 'off' || text === 'none') return null;
  const m = /^\^([@-_?])$/.exec(text.toUpperCase());
  if (!m)
    throw new Error(
      `the hotkey prefix must be a control key like ^^ or ^O, or off, not ${JSON.stringify(text)}`,
    );
  const c = m[1] ?? '';
  const code = c === '?' ? 0x7f : c.charCodeAt(0) & 0x1f;
  const refused: Record<number, string> = {
    3: 'Ctrl-C interrupts',
    4: 'Ctrl-D ends input',
    8: 'Backspace',
    9: 'Tab',
    10: 'Enter',
    13: 'Enter',
    21: 'Ctrl-U erases the line',
    23: 'Ctrl-W erases a word',
    27: 'ESC starts every terminal reply and function key',
    29: 'the detach key of xencons console and xenconsole',
    127: 'Backspace (DEL)',
  };
  const why = refused[code];
  if (why !== undefined) throw new Error(`${text} cannot be the hotkey prefix: ${why}`);
  return code;
}

/** `^^` for 0x1e. */
export function showControl(code: number): string {
  return code === 0x7f ? '^?' : `^${String.fromCharCode(code + 0x40)}`;
}

/**
 * Finds `PREFIX KEY` in console input, as hvc's `^O` SysRq and ssh's `~` escape do. Only a
 * registered key after the prefix is taken out; `PREFIX PREFIX` gives one literal prefix; the
 * prefix followed by anything else passes through unchanged. So every byte sequence can still be
 * typed, and the result does not depend on how the input was split into chunks. Data is handed on
 * as views of the input (no copies: passwords pass through here).
 */
export class HotkeyScanner {
  readonly prefix: number;
  readonly #isKey: (key: string) => boolean;
  #armed = false;

  constructor(prefix: number, isKey: (key: string) => boolean) {
    this.prefix = prefix;
    this.#isKey = isKey;
  }

  /** True while a prefix waits for its key. */
  get pending(): boolean {
    return this.#armed;
  }

  feed(chunk: Buffer): ScanPiece[] {
    const out: ScanPiece[] = [];
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i] ?? 0;
      if (this.#armed) {
        this.#armed = false;
        start = i + 1;
        if (b === this.prefix) {
          out.push({ type: 'data', bytes: Buffer.from([b]) });
          continue;
        }
        const key = String.fromCharCode(b);
        if (b >= 0x20 && b < 0x7f && this.#isKey(key)) {
          out.push({ type: 'key', key });
          continue;
        }
        out.push({ type: 'data', bytes: Buffer.from([this.prefix]) });
        start = i; // the byte itself passes as data
        continue;
      }
      if (b === this.prefix) {
        if (i > start) out.push({ type: 'data', bytes: chunk.subarray(start, i) });
        this.#armed = true;
        start = i + 1;
      }
    }
    if (!this.#armed && start < chunk.length) {
      out.push({ type: 'data', bytes: chunk.subarray(start) });
    }
    return out;
  }

  /** Gives up waiting for a key: the held prefix passes through. */
  flush(): ScanPiece[] {
    if (!this.#armed) return [];
    this.#armed = false;
    return [{ type: 'data', bytes: Buffer.from([this.prefix]) }];
  }
}

export interface HotkeyFilterOptions {
  /** The prefix byte, or null for a plain pass-through. */
  prefix: number | null;
  /** Whether a key is registered. */
  isKey: (key: string) => boolean;
  /** A hotkey was pressed. */
  onKey: (key: string) => void;
  /** A lone prefix passes through after this long without a key (ms, default 1500). */
  timeoutMs?: number;
}

/**
 * The console as the login shell sees it: input with hotkeys taken out, output straight to the
 * console. Ending or destroying this stream leaves the console itself alone (it belongs to the
 * agent, and a restarted login shell gets a new filter over the same console).
 */
export class HotkeyFilter extends Duplex {
  readonly #inner: Duplex;
  readonly #scanner: HotkeyScanner | null;
  readonly #onKey: (key: string) => void;
  readonly #timeoutMs: number;
  #timer: NodeJS.Timeout | null = null;
  #ended = false;
  readonly #onData = (chunk: Buffer | string) =>
    this.#input(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  readonly #onEnd = () => this.#finish();

  constructor(inner: Duplex, options: HotkeyFilterOptions) {
    super({ allowHalfOpen: false });
    this.#inner = inner;
    this.#scanner =
      options.prefix === null ? null : new HotkeyScanner(options.prefix, options.isKey);
    this.#onKey = options.onKey;
    this.#timeoutMs = options.timeoutMs ?? 1500;
    // Errors end the session through 'close'; they must never crash the agent.
    this.on('error', () => {});
    inner.on('data', this.#onData);
    inner.on('end', this.#onEnd);
    inner.on('close', this.#onEnd);
    inner.on('error', this.#onEnd);
    if (inner.readableEnded || inner.destroyed) queueMicrotask(this.#onEnd);
  }

  override _read(): void {
    if (this.#inner.isPaused()) this.#inner.resume();
  }

  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    if (this.#inner.destroyed || !this.#inner.writable) {
      callback();
      return;
    }
    this.#inner.write(chunk, (error) => callback(error ?? null));
  }

  override _final(callback: (error?: Error | null) => void): void {
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#detach();
    callback(error);
  }

  #input(chunk: Buffer): void {
    if (this.#ended) return;
    if (this.#scanner === null) {
      this.#deliver(chunk);
      return;
    }
    this.#clearTimer();
    for (const piece of this.#scanner.feed(chunk)) {
      if (piece.type === 'data') this.#deliver(piece.bytes);
      else this.#onKey(piece.key);
    }
    if (this.#scanner.pending) {
      const scanner = this.#scanner;
      this.#timer = setTimeout(() => {
        this.#timer = null;
        for (const piece of scanner.flush()) if (piece.type === 'data') this.#deliver(piece.bytes);
      }, this.#timeoutMs);
      this.#timer.unref();
    }
  }

  #deliver(bytes: Buffer): void {
    if (bytes.length === 0) return;
    if (!this.push(bytes)) this.#inner.pause();
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #finish(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#clearTimer();
    this.#detach();
    this.push(null);
    // The console is gone: so is this stream (the login shell's session hangs up).
    this.destroy();
  }

  #detach(): void {
    this.#clearTimer();
    this.#inner.off('data', this.#onData);
    this.#inner.off('end', this.#onEnd);
    this.#inner.off('close', this.#onEnd);
    this.#inner.off('error', this.#onEnd);
  }
}
